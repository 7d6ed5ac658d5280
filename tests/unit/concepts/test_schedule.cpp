// schedule: a conforming schedule (GPipe order) satisfies it, near misses do not.
#include <catch2/catch.hpp>

#include <list>
#include <vector>

#include "dtfm/concepts/schedule.hpp"

namespace {

// All forwards, then all backwards in reverse: the GPipe order, enough to exercise the concept.
struct all_forward_then_backward {
    using schedule_concept = dtfm::schedule_tag;
    std::vector<dtfm::pipeline_op> ops(int, int, int microbatches) const {
        std::vector<dtfm::pipeline_op> out;
        for (int m = 0; m < microbatches; ++m) out.push_back({dtfm::pipeline_pass::forward, m});
        for (int m = microbatches - 1; m >= 0; --m) out.push_back({dtfm::pipeline_pass::backward, m});
        return out;
    }
};

struct returns_a_list {
    using schedule_concept = dtfm::schedule_tag;
    std::list<dtfm::pipeline_op> ops(int, int, int) const { return {}; }
};

struct ops_not_const {
    using schedule_concept = dtfm::schedule_tag;
    std::vector<dtfm::pipeline_op> ops(int, int, int) { return {}; }
};

struct untagged {
    std::vector<dtfm::pipeline_op> ops(int, int, int) const { return {}; }
};

}  // namespace

TEST_CASE("schedule: a conforming schedule satisfies it, near misses do not", "[concepts][schedule]") {
    STATIC_REQUIRE(dtfm::concepts::schedule<all_forward_then_backward>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::schedule<returns_a_list>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::schedule<ops_not_const>);
    STATIC_REQUIRE_FALSE(dtfm::concepts::schedule<untagged>);

    const auto ops = all_forward_then_backward{}.ops(0, 2, 3);
    REQUIRE(ops.size() == 6);
    REQUIRE(ops.front() == dtfm::pipeline_op{dtfm::pipeline_pass::forward, 0});
    REQUIRE(ops.back() == dtfm::pipeline_op{dtfm::pipeline_pass::backward, 0});
}
