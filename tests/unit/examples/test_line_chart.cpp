#include <catch2/catch.hpp>

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "dtfm/error.hpp"
#include "support/line_chart.hpp"

using dtfm::examples::line_chart;
using dtfm::examples::rgb;

namespace dtfm::examples {
std::ostream& operator<<(std::ostream& os, rgb c) {
    return os << "rgb(" << int{c.r} << ", " << int{c.g} << ", " << int{c.b} << ")";
}
}  // namespace dtfm::examples

namespace {

constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf = std::numeric_limits<double>::infinity();
constexpr rgb white{255, 255, 255}, blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44},
    grey{120, 120, 120};

struct image {
    int w = 0, h = 0;
    std::vector<std::uint8_t> px;  // RGB, rows top first
    rgb at(int x, int y) const {
        const auto i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)) * 3;
        return {px[i], px[i + 1], px[i + 2]};
    }
};

std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 |
           std::uint32_t{b[at + 3]};
}

// Parses the PNG independently of the writer: signature, every chunk's CRC (zlib crc32 over type
// and data), IHDR first and IEND last, IDAT inflated with zlib's uncompress to exactly the size an
// 8-bit RGB image needs, filter byte 0 on each row.
image decode_png(const std::vector<std::uint8_t>& png) {
    const std::vector<std::uint8_t> sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    REQUIRE(png.size() > sig.size());
    REQUIRE(std::vector<std::uint8_t>(png.begin(), png.begin() + 8) == sig);

    image img;
    std::vector<std::uint8_t> idat;
    std::vector<std::string> types;
    std::size_t at = 8;
    while (at < png.size()) {
        REQUIRE(at + 12 <= png.size());
        const std::uint32_t len = be32(png, at);
        REQUIRE(at + 12 + len <= png.size());
        const std::string type(png.begin() + static_cast<std::ptrdiff_t>(at + 4),
                               png.begin() + static_cast<std::ptrdiff_t>(at + 8));
        const auto crc = static_cast<std::uint32_t>(::crc32(0L, png.data() + at + 4, static_cast<uInt>(len + 4)));
        INFO("chunk " << type);
        REQUIRE(be32(png, at + 8 + len) == crc);
        const std::size_t data = at + 8;
        if (type == "IHDR") {
            REQUIRE(types.empty());
            REQUIRE(len == 13);
            img.w = static_cast<int>(be32(png, data));
            img.h = static_cast<int>(be32(png, data + 4));
            CHECK(png[data + 8] == 8);   // bit depth
            CHECK(png[data + 9] == 2);   // truecolour RGB
            CHECK(png[data + 10] == 0);  // deflate
            CHECK(png[data + 11] == 0);  // filter method 0
            CHECK(png[data + 12] == 0);  // no interlace
        } else if (type == "IDAT") {
            REQUIRE(!types.empty());
            idat.insert(idat.end(), png.begin() + static_cast<std::ptrdiff_t>(data),
                        png.begin() + static_cast<std::ptrdiff_t>(data + len));
        } else if (type == "IEND") {
            REQUIRE(len == 0);
        }
        types.push_back(type);
        at += 12 + len;
    }
    REQUIRE(at == png.size());
    REQUIRE(types.size() >= 3);
    REQUIRE(types.front() == "IHDR");
    REQUIRE(types.back() == "IEND");
    REQUIRE(img.w > 0);
    REQUIRE(img.h > 0);

    const std::size_t row = static_cast<std::size_t>(img.w) * 3 + 1;
    std::vector<std::uint8_t> raw(row * static_cast<std::size_t>(img.h) + 1);  // one spare byte: too much data shows
    uLongf n = static_cast<uLongf>(raw.size());
    REQUIRE(::uncompress(raw.data(), &n, idat.data(), static_cast<uLong>(idat.size())) == Z_OK);
    REQUIRE(n == row * static_cast<std::size_t>(img.h));
    for (int y = 0; y < img.h; ++y) {
        const std::size_t r = static_cast<std::size_t>(y) * row;
        REQUIRE(raw[r] == 0);
        img.px.insert(img.px.end(), raw.begin() + static_cast<std::ptrdiff_t>(r + 1),
                      raw.begin() + static_cast<std::ptrdiff_t>(r + row));
    }
    return img;
}

bool dark(rgb c) { return c.r < 100 && c.g < 100 && c.b < 100; }

int count_in(const image& img, line_chart::box b, bool (*pred)(rgb)) {
    int n = 0;
    for (int y = b.y0; y <= b.y1; ++y)
        for (int x = b.x0; x <= b.x1; ++x) n += pred(img.at(x, y)) ? 1 : 0;
    return n;
}

int count_colour(const image& img, line_chart::box b, rgb c) {
    int n = 0;
    for (int y = b.y0; y <= b.y1; ++y)
        for (int x = b.x0; x <= b.x1; ++x) n += img.at(x, y) == c ? 1 : 0;
    return n;
}

// Three falling loss curves, as dtfm-demo draws them, and an entropy floor.
line_chart three_runs() {
    line_chart c;
    c.title("Eval loss against wall-clock seconds");
    c.x_label("wall-clock seconds");
    c.y_label("eval loss");
    c.add_series("baseline", blue, {0, 100, 200, 300, 400}, {6.0, 5.0, 4.0, 3.5, 3.5});
    c.add_series("dtfm", orange, {0, 50, 100, 150}, {6.0, 4.0, 3.0, 2.6});
    c.add_series("local sgd", green, {0, 40, 80, 120}, {6.0, 5.5, 5.5, 5.0});
    c.add_hline("entropy floor", grey, 2.0);
    return c;
}

}  // namespace

TEST_CASE("line_chart writes a well-formed 8-bit RGB PNG of the requested size", "[line_chart]") {
    const line_chart c = three_runs();
    const image img = decode_png(c.render_png());
    CHECK(img.w == 900);
    CHECK(img.h == 540);

    line_chart small(320, 200);
    const image s = decode_png(small.render_png());
    CHECK(s.w == 320);
    CHECK(s.h == 200);
}

TEST_CASE("line_chart draws the series where pixel_of maps their data", "[line_chart]") {
    const line_chart c = three_runs();
    const image img = decode_png(c.render_png());

    SECTION("background is white") {
        CHECK(img.at(0, 0) == white);
        CHECK(img.at(img.w - 1, 0) == white);
        CHECK(img.at(0, img.h - 1) == white);
        CHECK(img.at(img.w - 1, img.h - 1) == white);
        // Inside the plot, away from data, grid and legend: (350, 5.75) lies above every curve.
        const auto p = c.pixel_of(350, 5.75);
        CHECK(img.at(p.x, p.y) == white);
    }

    SECTION("each series has its colour at its points and along its segments") {
        struct probe {
            double x, y;
            rgb colour;
        };
        for (const probe& pr : {probe{100, 5.0, blue}, probe{300, 3.5, blue}, probe{250, 3.75, blue},
                                probe{50, 4.0, orange}, probe{125, 2.8, orange}, probe{40, 5.5, green},
                                probe{60, 5.5, green}}) {
            const auto p = c.pixel_of(pr.x, pr.y);
            INFO("data (" << pr.x << ", " << pr.y << ") -> pixel (" << p.x << ", " << p.y << ")");
            REQUIRE(p.x > 0);
            REQUIRE(p.x < img.w);
            REQUIRE(p.y > 0);
            REQUIRE(p.y < img.h);
            CHECK(img.at(p.x, p.y) == pr.colour);
        }
    }

    SECTION("lines are at least two pixels wide") {
        // The flat stretch of the blue curve, between markers: the pixels above and below too.
        const auto p = c.pixel_of(350, 3.5);
        CHECK(img.at(p.x, p.y) == blue);
        const int thick = count_colour(img, {p.x, p.y - 5, p.x, p.y + 5}, blue);
        CHECK(thick >= 2);
        CHECK(thick <= 4);
        // And across a steep segment (orange, 0..50 s): at least two pixels in its row.
        const auto q = c.pixel_of(25, 5.0);
        CHECK(count_colour(img, {q.x - 6, q.y, q.x + 6, q.y}, orange) >= 2);
    }

    SECTION("the dashed reference line is drawn at its y") {
        const auto b = c.plot_box();
        const auto p = c.pixel_of(0, 2.0);
        CHECK(img.at(b.x0 + 2, p.y) == grey);
        CHECK(count_colour(img, {b.x0, p.y, b.x1, p.y}, grey) > (b.x1 - b.x0) / 3);
    }

    SECTION("the mapping is linear and the data fits inside the plot area") {
        const auto b = c.plot_box();
        const auto lo = c.pixel_of(0, 2.0), hi = c.pixel_of(400, 6.0), mid = c.pixel_of(200, 4.0);
        CHECK(lo.x > b.x0);
        CHECK(hi.x < b.x1);
        CHECK(hi.y > b.y0);
        CHECK(lo.y < b.y1);
        CHECK(std::abs(mid.x - (lo.x + hi.x) / 2) <= 1);
        CHECK(std::abs(mid.y - (lo.y + hi.y) / 2) <= 1);
    }

    SECTION("the legend names every series in its colour") {
        const auto b = c.legend_box();
        REQUIRE(b.x1 > b.x0);
        REQUIRE(b.y1 > b.y0);
        const auto plot = c.plot_box();
        CHECK(b.x0 >= plot.x0);
        CHECK(b.x1 <= plot.x1);
        CHECK(count_in(img, b, dark) > 200);  // the names
        for (rgb col : {blue, orange, green, grey}) CHECK(count_colour(img, b, col) > 20);
    }

    SECTION("title, tick labels and axis labels are drawn") {
        const auto plot = c.plot_box();
        CHECK(count_in(img, {0, 0, img.w - 1, plot.y0 - 2}, dark) > 300);               // title
        CHECK(count_in(img, {0, plot.y1 + 2, img.w - 1, img.h - 1}, dark) > 300);        // x ticks, label
        CHECK(count_in(img, {0, plot.y0, plot.x0 - 2, plot.y1}, dark) > 300);            // y ticks, label
        CHECK(img.at(plot.x0 - 1, (plot.y0 + plot.y1) / 2) != white);                    // the frame
    }
}

TEST_CASE("line_chart skips NaN and infinite points and still draws the axes", "[line_chart]") {
    SECTION("an empty chart") {
        line_chart c;
        const image img = decode_png(c.render_png());
        const auto b = c.plot_box();
        CHECK(img.at(b.x0 - 1, (b.y0 + b.y1) / 2) != white);
        CHECK(count_in(img, {0, b.y1 + 2, img.w - 1, img.h - 1}, dark) > 50);  // tick labels
        CHECK(c.legend_box().x1 < c.legend_box().x0);
    }

    SECTION("all-NaN and infinite series") {
        line_chart c;
        c.add_series("nan", blue, {qnan, qnan}, {qnan, qnan});
        c.add_series("inf", orange, {inf, 1.0, -inf}, {1.0, inf, 2.0});
        c.add_series("empty", green, {}, {});
        c.add_hline("nan floor", grey, qnan);
        const image img = decode_png(c.render_png());
        const auto plot = c.plot_box();
        const auto legend = c.legend_box();
        CHECK(count_colour(img, legend, blue) > 0);  // named in the legend, nothing drawn in the plot
        CHECK(count_colour(img, plot, blue) == count_colour(img, legend, blue));
        CHECK(count_colour(img, plot, orange) == count_colour(img, legend, orange));
        CHECK(count_in(img, c.legend_box(), dark) > 50);
        CHECK(img.at(plot.x0 - 1, (plot.y0 + plot.y1) / 2) != white);
    }

    SECTION("a NaN breaks the line and the finite points still set the range") {
        line_chart c;
        c.add_series("gappy", blue, {0, 1, 2, 3, qnan}, {1, qnan, inf, 1, 5});
        const image img = decode_png(c.render_png());
        const auto a = c.pixel_of(0, 1), b = c.pixel_of(3, 1), gap = c.pixel_of(1.7, 1);
        CHECK(img.at(a.x, a.y) == blue);
        CHECK(img.at(b.x, b.y) == blue);
        CHECK(img.at(gap.x, gap.y) != blue);
    }

    SECTION("values spanning the whole double range") {
        constexpr double big = std::numeric_limits<double>::max();
        line_chart c;
        c.add_series("huge", blue, {-big, 0, big}, {big, -big, big});
        c.add_hline("max", grey, big);
        const image img = decode_png(c.render_png());
        const auto p = c.pixel_of(0, -big);
        CHECK(img.at(p.x, p.y) == blue);
    }

    SECTION("a single point or a constant series") {
        line_chart c;
        c.add_series("one", blue, {5}, {5});
        const image img = decode_png(c.render_png());
        const auto p = c.pixel_of(5, 5);
        CHECK(img.at(p.x, p.y) == blue);
    }
}

TEST_CASE("line_chart picks nice ticks", "[line_chart]") {
    auto is_nice = [](double step) {
        const double mag = std::pow(10.0, std::floor(std::log10(step) + 1e-9));
        const double m = step / mag;
        return std::abs(m - 1) < 1e-6 || std::abs(m - 2) < 1e-6 || std::abs(m - 5) < 1e-6;
    };
    for (auto [lo, hi] : {std::pair{0.0, 3600.0}, {2.1, 6.4}, {0.001, 0.0013}, {-5.0, 7.0}, {1e9, 3e9}}) {
        const auto a = dtfm::examples::chart_detail::make_axis(lo, hi);
        INFO("range " << lo << " .. " << hi);
        CHECK(a.lo < lo);
        CHECK(a.hi > hi);
        REQUIRE(a.ticks.size() >= 3);
        CHECK(a.ticks.size() <= 7);
        REQUIRE(a.labels.size() == a.ticks.size());
        CHECK(is_nice(a.ticks[1] - a.ticks[0]));
        for (double t : a.ticks) {
            CHECK(t >= a.lo);
            CHECK(t <= a.hi);
        }
    }
    const auto secs = dtfm::examples::chart_detail::make_axis(0.0, 3600.0);
    CHECK(secs.labels.front() == "0");
    CHECK(secs.labels[1] == "1000");
}

TEST_CASE("line_chart rejects bad input and writes its PNG to a file", "[line_chart]") {
    CHECK_THROWS_AS(line_chart(10, 10), dtfm::config_error);
    line_chart c = three_runs();
    CHECK_THROWS_AS(c.add_series("bad", blue, {1, 2}, {1}), dtfm::config_error);

    const auto path = std::filesystem::temp_directory_path() / "dtfm_test_line_chart.png";
    c.write_png(path.string());
    std::ifstream f(path, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    f.close();
    std::filesystem::remove(path);
    CHECK(bytes == c.render_png());

    CHECK_THROWS_AS(c.write_png("/nonexistent-dir-for-dtfm/chart.png"), dtfm::config_error);
}
