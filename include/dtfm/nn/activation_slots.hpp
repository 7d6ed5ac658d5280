// nn::activation_slots<A>: where a pipeline stage keeps what backward needs of the micro-batches
// between their forward and their backward. Micro-batch m uses training slot m % slots; a slot
// remembers whose activations it holds (A::microbatch, −1 for none), so a backward whose slot was
// reused, or never filled, is refused. One more slot, made on first use, serves evaluation, so an
// evaluation never disturbs a micro-batch in flight. Shared by nn::gpt_stage and cuda::gpt_stage.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "dtfm/error.hpp"

namespace dtfm::nn {

template <class A>
class activation_slots {
public:
    // make() returns a std::unique_ptr<A>; stage names the stage in error messages.
    template <class Make>
    activation_slots(int slots, const char* stage, Make make) : slots_(positive(slots, stage)), stage_(stage) {
        slot_.reserve(static_cast<std::size_t>(slots_) + 1);
        for (int i = 0; i < slots_; ++i) slot_.push_back(make());
    }

    int count() const noexcept { return slots_; }

    // Micro-batch m as an index, refusing a negative number (call names the member function).
    std::size_t number(int microbatch, const char* call) const {
        if (microbatch < 0) throw error(stage_ + "::" + call + ": negative micro-batch number");
        return static_cast<std::size_t>(microbatch);
    }

    // The slot forward of micro-batch m fills (marked empty until the caller marks it filled).
    A& training(int microbatch) {
        A& a = *slot_[number(microbatch, "forward") % static_cast<std::size_t>(slots_)];
        a.microbatch = -1;
        return a;
    }

    // The slot holding micro-batch m's activations, or a dtfm::error.
    A& held(int microbatch) {
        A& a = *slot_[number(microbatch, "backward") % static_cast<std::size_t>(slots_)];
        if (a.microbatch != microbatch)
            throw error(stage_ + "::backward: the activations of micro-batch " + std::to_string(microbatch) +
                        " are not held (never forwarded, or slot reused: more than " + std::to_string(slots_) +
                        " micro-batches in flight)");
        return a;
    }

    // The evaluation slot, made by make() on first use.
    template <class Make>
    A& evaluation(int microbatch, Make make) {
        number(microbatch, "evaluate");
        if (slot_.size() == static_cast<std::size_t>(slots_)) slot_.push_back(make());
        return *slot_.back();
    }

private:
    static int positive(int v, const char* stage) {
        if (v < 1) throw config_error(std::string(stage) + ": slots must be at least 1");
        return v;
    }

    int slots_;
    std::string stage_;
    std::vector<std::unique_ptr<A>> slot_;  // slots_ for training, then one for evaluation
};

// The ids fed for micro-batch m, or a dtfm::error when none were (Store: a vector or deque of
// host or device vectors).
template <class Store>
const typename Store::value_type& fed_ids(const Store& store, std::size_t m, const char* stage) {
    if (m >= store.size() || store[m].empty())
        throw error(std::string(stage) + ": micro-batch " + std::to_string(m) + " was not fed its tokens and targets");
    return store[m];
}

}  // namespace dtfm::nn
