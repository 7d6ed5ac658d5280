// The transport suite over every transport dtfm has, on inproc threads with 2, 3 and 4 ranks:
// inproc itself, throttled, checked, faulty (without faults), all three stacked, and staged (a
// "device" space over inproc, with copies that land late).
#include <catch2/catch.hpp>

#include "dtfm/transport/checked.hpp"
#include "dtfm/transport/faulty.hpp"
#include "dtfm/transport/inproc.hpp"
#include "dtfm/transport/staged.hpp"
#include "dtfm/transport/throttled.hpp"
#include "../../support/staging_copiers.hpp"
#include "../../support/transport_suite.hpp"

using namespace dtfm::transport;

namespace {

// Each kind builds its transport from a rank's world (collectively) for the whole group.
struct plain {
    static inproc make(inproc& world) { return world.split(0, world.rank()); }
};
struct throttled_fast {
    static throttled<inproc> make(inproc& world) {
        return {world.split(0, world.rank()), link_model::uniform(world.size(), 0.2, 10.0)};
    }
};
struct checked_plain {
    static checked<inproc> make(inproc& world) { return checked<inproc>(world.split(0, world.rank())); }
};
struct faulty_without_faults {
    static faulty<inproc> make(inproc& world) { return {world.split(0, world.rank()), fault_plan{}}; }
};
struct stacked {
    static checked<faulty<throttled<inproc>>> make(inproc& world) {
        throttled<inproc> slow(world.split(0, world.rank()), link_model::uniform(world.size(), 0.1, 5.0));
        return checked<faulty<throttled<inproc>>>(faulty<throttled<inproc>>(std::move(slow), fault_plan{}));
    }
};

struct staged_late_copies {
    static staged<inproc, dtfm::test::deferred_copier> make(inproc& world) {
        return staged<inproc, dtfm::test::deferred_copier>(world.split(0, world.rank()));
    }
};

}  // namespace

TEMPLATE_TEST_CASE("every transport passes the transport suite", "[transport]", plain, throttled_fast,
                   checked_plain, faulty_without_faults, stacked, staged_late_copies) {
    STATIC_REQUIRE(dtfm::concepts::transport<decltype(TestType::make(std::declval<inproc&>()))>);
    for (int ranks : {2, 3, 4}) {
        INFO("ranks: " << ranks);
        run_inproc(ranks, [](inproc& world) {
            auto t = TestType::make(world);
            dtfm::test::check_transport(t);
        });
    }
}
