// nn::normal_generator: reproducible, standard-normal moments; parameter_key separates streams.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "dtfm/nn/init.hpp"

TEST_CASE("normal_generator: same key, same deviates, with standard-normal moments", "[nn][init]") {
    dtfm::nn::normal_generator a(42), b(42), c(43);
    double s1 = 0, s2 = 0, s4 = 0;
    const int n = 200000;
    bool differ = false;
    for (int i = 0; i < n; ++i) {
        const double x = a();
        REQUIRE(x == b());
        differ = differ || x != c();
        s1 += x;
        s2 += x * x;
        s4 += x * x * x * x;
    }
    REQUIRE(differ);
    REQUIRE(s1 / n == Approx(0.0).margin(0.01));
    REQUIRE(s2 / n == Approx(1.0).epsilon(0.01));
    REQUIRE(s4 / n == Approx(3.0).epsilon(0.03));
}

TEST_CASE("parameter_key: one stream per seed, layer and tensor", "[nn][init]") {
    using dtfm::nn::gpt_tensor;
    using dtfm::nn::parameter_key;
    REQUIRE(parameter_key(1, 2, gpt_tensor::fc_weight) == parameter_key(1, 2, gpt_tensor::fc_weight));
    REQUIRE(parameter_key(1, 2, gpt_tensor::fc_weight) != parameter_key(1, 3, gpt_tensor::fc_weight));
    REQUIRE(parameter_key(1, 2, gpt_tensor::fc_weight) != parameter_key(2, 2, gpt_tensor::fc_weight));
    REQUIRE(parameter_key(1, 2, gpt_tensor::fc_weight) != parameter_key(1, 2, gpt_tensor::out_weight));
    // The first deviates of a fixed stream: a change of generator shows here.
    dtfm::nn::splitmix64 g(0);
    REQUIRE(g() == 0xE220A8397B1DCDAFull);
}
