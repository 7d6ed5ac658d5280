// A tiny line-chart renderer that writes PNG: enough for the example programs to draw "eval loss
// against wall-clock seconds" for a few runs without a plotting dependency. Header-only; needs only
// zlib (compress2 for IDAT, crc32 for the chunk checksums); link ZLIB::ZLIB.
//
// White background, light grid, axes with about five 1/2/5x10^k ticks and numeric labels, axis
// labels, a title, and a legend box (top right, inside the plot) naming each series and reference
// line. Series are polylines 2.5 px wide with small markers (circle, square, diamond in turn);
// NaN or infinite points are skipped and break the line. Text uses a built-in 5x8 bitmap font for
// printable ASCII (anything else draws as '?'), scaled 2x (3x for the title). No anti-aliasing.
//
//     dtfm::examples::line_chart c;
//     c.title("eval loss"); c.x_label("wall-clock seconds"); c.y_label("loss");
//     c.add_series("dtfm", {31, 119, 180}, xs, ys);
//     c.add_hline("entropy floor", {120, 120, 120}, 1.9);
//     c.write_png("loss.png");
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zlib.h>

#include "dtfm/error.hpp"

namespace dtfm::examples {

struct rgb {
    std::uint8_t r, g, b;
    friend bool operator==(const rgb&, const rgb&) = default;
};

namespace chart_detail {

// 5x7 glyphs (5x8 with the descenders of g j p q y and the comma) for ASCII 32..126, one string
// each: eight rows of five cells ('#' ink, '.' paper) separated by spaces, top row first.
inline constexpr std::array<std::string_view, 95> font5x8 = {
    "..... ..... ..... ..... ..... ..... ..... .....",  // ' '
    "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.. .....",  // !
    ".#.#. .#.#. ..... ..... ..... ..... ..... .....",  // "
    ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#. .....",  // #
    "..#.. .#### #.#.. .###. ..#.# ####. ..#.. .....",  // $
    "##... ##..# ...#. ..#.. .#... #..## ...## .....",  // %
    ".##.. #..#. #.#.. .#... #.#.# #..#. .##.# .....",  // &
    "..#.. ..#.. .#... ..... ..... ..... ..... .....",  // '
    "...#. ..#.. .#... .#... .#... ..#.. ...#. .....",  // (
    ".#... ..#.. ...#. ...#. ...#. ..#.. .#... .....",  // )
    "..... ..#.. #.#.# .###. #.#.# ..#.. ..... .....",  // *
    "..... ..#.. ..#.. ##### ..#.. ..#.. ..... .....",  // +
    "..... ..... ..... ..... ..... .##.. ..#.. .#...",  // ,
    "..... ..... ..... ##### ..... ..... ..... .....",  // -
    "..... ..... ..... ..... ..... .##.. .##.. .....",  // .
    "..... ....# ...#. ..#.. .#... #.... ..... .....",  // /
    ".###. #...# #..## #.#.# ##..# #...# .###. .....",  // 0
    "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###. .....",  // 1
    ".###. #...# ....# ...#. ..#.. .#... ##### .....",  // 2
    "##### ...#. ..#.. ...#. ....# #...# .###. .....",  // 3
    "...#. ..##. .#.#. #..#. ##### ...#. ...#. .....",  // 4
    "##### #.... ####. ....# ....# #...# .###. .....",  // 5
    "..##. .#... #.... ####. #...# #...# .###. .....",  // 6
    "##### ....# ...#. ..#.. .#... .#... .#... .....",  // 7
    ".###. #...# #...# .###. #...# #...# .###. .....",  // 8
    ".###. #...# #...# .#### ....# ...#. .##.. .....",  // 9
    "..... .##.. .##.. ..... .##.. .##.. ..... .....",  // :
    "..... .##.. .##.. ..... .##.. ..#.. .#... .....",  // ;
    "...#. ..#.. .#... #.... .#... ..#.. ...#. .....",  // <
    "..... ..... ##### ..... ##### ..... ..... .....",  // =
    ".#... ..#.. ...#. ....# ...#. ..#.. .#... .....",  // >
    ".###. #...# ....# ...#. ..#.. ..... ..#.. .....",  // ?
    ".###. #...# ....# .##.# #.#.# #.#.# .###. .....",  // @
    ".###. #...# #...# ##### #...# #...# #...# .....",  // A
    "####. #...# #...# ####. #...# #...# ####. .....",  // B
    ".###. #...# #.... #.... #.... #...# .###. .....",  // C
    "###.. #..#. #...# #...# #...# #..#. ###.. .....",  // D
    "##### #.... #.... ####. #.... #.... ##### .....",  // E
    "##### #.... #.... ####. #.... #.... #.... .....",  // F
    ".###. #...# #.... #.### #...# #...# .#### .....",  // G
    "#...# #...# #...# ##### #...# #...# #...# .....",  // H
    ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###. .....",  // I
    "..### ...#. ...#. ...#. ...#. #..#. .##.. .....",  // J
    "#...# #..#. #.#.. ##... #.#.. #..#. #...# .....",  // K
    "#.... #.... #.... #.... #.... #.... ##### .....",  // L
    "#...# ##.## #.#.# #.#.# #...# #...# #...# .....",  // M
    "#...# #...# ##..# #.#.# #..## #...# #...# .....",  // N
    ".###. #...# #...# #...# #...# #...# .###. .....",  // O
    "####. #...# #...# ####. #.... #.... #.... .....",  // P
    ".###. #...# #...# #...# #.#.# #..#. .##.# .....",  // Q
    "####. #...# #...# ####. #.#.. #..#. #...# .....",  // R
    ".#### #.... #.... .###. ....# ....# ####. .....",  // S
    "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. .....",  // T
    "#...# #...# #...# #...# #...# #...# .###. .....",  // U
    "#...# #...# #...# #...# #...# .#.#. ..#.. .....",  // V
    "#...# #...# #...# #.#.# #.#.# #.#.# .#.#. .....",  // W
    "#...# #...# .#.#. ..#.. .#.#. #...# #...# .....",  // X
    "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#.. .....",  // Y
    "##### ....# ...#. ..#.. .#... #.... ##### .....",  // Z
    ".###. .#... .#... .#... .#... .#... .###. .....",  // [
    "..... #.... .#... ..#.. ...#. ....# ..... .....",  // backslash
    ".###. ...#. ...#. ...#. ...#. ...#. .###. .....",  // ]
    "..#.. .#.#. #...# ..... ..... ..... ..... .....",  // ^
    "..... ..... ..... ..... ..... ..... ##### .....",  // _
    ".#... ..#.. ...#. ..... ..... ..... ..... .....",  // `
    "..... ..... .###. ....# .#### #...# .#### .....",  // a
    "#.... #.... #.##. ##..# #...# #...# ####. .....",  // b
    "..... ..... .###. #.... #.... #...# .###. .....",  // c
    "....# ....# .##.# #..## #...# #...# .#### .....",  // d
    "..... ..... .###. #...# ##### #.... .###. .....",  // e
    "..##. .#..# .#... ###.. .#... .#... .#... .....",  // f
    "..... ..... .#### #...# #...# .#### ....# .###.",  // g
    "#.... #.... #.##. ##..# #...# #...# #...# .....",  // h
    "..#.. ..... .##.. ..#.. ..#.. ..#.. .###. .....",  // i
    "...#. ..... ..##. ...#. ...#. ...#. #..#. .##..",  // j
    "#.... #.... #..#. #.#.. ##... #.#.. #..#. .....",  // k
    ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###. .....",  // l
    "..... ..... ##.#. #.#.# #.#.# #...# #...# .....",  // m
    "..... ..... #.##. ##..# #...# #...# #...# .....",  // n
    "..... ..... .###. #...# #...# #...# .###. .....",  // o
    "..... ..... ####. #...# #...# ####. #.... #....",  // p
    "..... ..... .#### #...# #...# .#### ....# ....#",  // q
    "..... ..... #.##. ##..# #.... #.... #.... .....",  // r
    "..... ..... .###. #.... .###. ....# ####. .....",  // s
    ".#... .#... ###.. .#... .#... .#..# ..##. .....",  // t
    "..... ..... #...# #...# #...# #..## .##.# .....",  // u
    "..... ..... #...# #...# #...# .#.#. ..#.. .....",  // v
    "..... ..... #...# #...# #.#.# #.#.# .#.#. .....",  // w
    "..... ..... #...# .#.#. ..#.. .#.#. #...# .....",  // x
    "..... ..... #...# #...# #...# .#### ....# .###.",  // y
    "..... ..... ##### ...#. ..#.. .#... ##### .....",  // z
    "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#. .....",  // {
    "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#.. .....",  // |
    ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#... .....",  // }
    "..... ..... .#... #.#.# ...#. ..... ..... .....",  // ~
};

constexpr bool font_is_well_formed() {
    for (std::string_view g : font5x8) {
        if (g.size() != 47) return false;
        for (std::size_t i = 0; i < g.size(); ++i) {
            const bool separator = i % 6 == 5;
            if (separator ? g[i] != ' ' : (g[i] != '#' && g[i] != '.')) return false;
        }
    }
    return true;
}
static_assert(font_is_well_formed(), "every glyph is 8 rows of 5 cells");

inline constexpr int glyph_w = 5, glyph_h = 8, cell_w = 6;

inline bool glyph_ink(char c, int col, int row) {
    const auto u = static_cast<unsigned char>(c);
    const std::string_view g = (u >= 32 && u <= 126) ? font5x8[u - 32u] : font5x8['?' - 32];
    return g[static_cast<std::size_t>(row * cell_w + col)] == '#';
}

// Width in pixels of `s` drawn at `scale` (no trailing spacing column).
inline int text_width(std::string_view s, int scale) {
    return s.empty() ? 0 : (static_cast<int>(s.size()) * cell_w - 1) * scale;
}

// The 1/2/5x10^k step nearest `raw`.
inline double nice_step(double raw) {
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / mag;
    const double m = norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0;
    return m * mag;
}

struct axis {
    double lo = 0.0, hi = 1.0;
    std::vector<double> ticks;
    std::vector<std::string> labels;
};

// An axis over the finite values in [lo, hi] (lo > hi when there were none), widened by 5% each
// side, with nice ticks (about `target` intervals) inside it.
inline axis make_axis(double lo, double hi, int target = 5) {
    constexpr double big = std::numeric_limits<double>::max();
    axis a;
    if (!(lo <= hi)) {
        lo = 0.0;
        hi = 1.0;
    } else if (hi - lo <= 1e-12 * std::max(std::abs(lo), std::abs(hi))) {
        const double pad = lo == 0.0 ? 0.5 : 0.1 * std::abs(lo);
        lo = std::max(-big, lo - pad);
        hi = std::min(big, hi + pad);
    }
    // Halves of values, so that a range across +-DBL_MAX stays finite.
    const double half_span = hi * 0.5 - lo * 0.5;
    a.lo = std::max(-big, lo - 0.1 * half_span);
    a.hi = std::min(big, hi + 0.1 * half_span);
    const double step = nice_step((a.hi * 0.5 - a.lo * 0.5) * (2.0 / std::max(1, target)));
    if (!std::isfinite(step) || step <= 0.0) return a;
    const double k0 = std::ceil(a.lo / step), k1 = std::floor(a.hi / step);
    if (!std::isfinite(k0) || !std::isfinite(k1) || k1 - k0 > 20.0) return a;
    const int digits = static_cast<int>(std::max(0.0, -std::floor(std::log10(step) + 1e-9)));
    const double biggest = std::max(std::abs(a.lo), std::abs(a.hi));
    const bool scientific = digits > 4 || biggest >= 1e6;
    for (int i = 0; i <= static_cast<int>(k1 - k0); ++i) {
        double v = (k0 + i) * step;
        if (std::abs(v) < step * 1e-9) v = 0.0;  // no "-0"
        char buf[48];
        if (scientific)
            std::snprintf(buf, sizeof buf, "%.3g", v);
        else
            std::snprintf(buf, sizeof buf, "%.*f", digits, v);
        a.ticks.push_back(v);
        a.labels.emplace_back(buf);
    }
    return a;
}

inline void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v) {
    out.push_back(static_cast<std::uint8_t>(v >> 24));
    out.push_back(static_cast<std::uint8_t>(v >> 16));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
}

inline void put_chunk(std::vector<std::uint8_t>& out, const char (&type)[5], const std::uint8_t* data,
                      std::size_t n) {
    put_u32(out, static_cast<std::uint32_t>(n));
    const std::size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data, data + n);
    const auto crc = ::crc32(0L, out.data() + start, static_cast<uInt>(n + 4));
    put_u32(out, static_cast<std::uint32_t>(crc));
}

}  // namespace chart_detail

class line_chart {
public:
    struct pixel {
        int x, y;
    };
    struct box {  // inclusive pixel rectangle
        int x0, y0, x1, y1;
    };

    explicit line_chart(int width = 900, int height = 540) : w_(width), h_(height) {
        if (width < 240 || height < 180 || width > 16384 || height > 16384)
            throw dtfm::config_error("line_chart: size must be within 240x180 .. 16384x16384, got " +
                                     std::to_string(width) + "x" + std::to_string(height));
    }

    void title(std::string s) { title_ = std::move(s); }
    void x_label(std::string s) { x_label_ = std::move(s); }
    void y_label(std::string s) { y_label_ = std::move(s); }

    // A polyline through (xs[i], ys[i]) with a marker at each point (at most about 60 markers: a
    // longer series marks every k-th point). Points with a NaN or infinite coordinate are skipped
    // and break the line.
    void add_series(std::string name, rgb colour, std::vector<double> xs, std::vector<double> ys) {
        if (xs.size() != ys.size())
            throw dtfm::config_error("line_chart: series '" + name + "' has " + std::to_string(xs.size()) +
                                     " x values and " + std::to_string(ys.size()) + " y values");
        series_.push_back({std::move(name), colour, std::move(xs), std::move(ys)});
    }

    // A dashed horizontal reference line across the plot (ignored when y is not finite).
    void add_hline(std::string name, rgb colour, double y) { hlines_.push_back({std::move(name), colour, y}); }

    int width() const noexcept { return w_; }
    int height() const noexcept { return h_; }

    // Where the data point (x, y) lands in the image rendered from the chart's current contents.
    pixel pixel_of(double x, double y) const {
        const layout l = make_layout();
        return {static_cast<int>(std::lround(l.fx(x))), static_cast<int>(std::lround(l.fy(y)))};
    }

    // The plot area (inside the axes) and the legend box ({0,0,-1,-1} when there is no legend).
    box plot_box() const {
        const layout l = make_layout();
        return {l.px0, l.py0, l.px1, l.py1};
    }
    box legend_box() const { return make_layout().legend; }

    // The image as 8-bit RGB, row-major, top row first.
    std::vector<std::uint8_t> render_rgb() const {
        canvas cv{w_, h_, std::vector<std::uint8_t>(static_cast<std::size_t>(w_) * static_cast<std::size_t>(h_) * 3, 255)};
        draw(cv);
        return std::move(cv.px);
    }

    // The PNG file bytes: 8-bit RGB, filter 0 on every row, one zlib stream split over IDAT chunks.
    std::vector<std::uint8_t> render_png() const {
        const std::vector<std::uint8_t> rgb_px = render_rgb();
        const std::size_t row = static_cast<std::size_t>(w_) * 3;
        std::vector<std::uint8_t> raw;
        raw.reserve((row + 1) * static_cast<std::size_t>(h_));
        for (int y = 0; y < h_; ++y) {
            raw.push_back(0);
            const auto* p = rgb_px.data() + static_cast<std::size_t>(y) * row;
            raw.insert(raw.end(), p, p + row);
        }
        uLongf zn = ::compressBound(static_cast<uLong>(raw.size()));
        std::vector<std::uint8_t> z(zn);
        if (::compress2(z.data(), &zn, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
            throw dtfm::error("line_chart: zlib compress2 failed");
        z.resize(zn);

        std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
        std::vector<std::uint8_t> ihdr;
        chart_detail::put_u32(ihdr, static_cast<std::uint32_t>(w_));
        chart_detail::put_u32(ihdr, static_cast<std::uint32_t>(h_));
        ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // depth 8, RGB, deflate, filter method 0, no interlace
        chart_detail::put_chunk(out, "IHDR", ihdr.data(), ihdr.size());
        constexpr std::size_t max_idat = std::size_t{1} << 20;
        for (std::size_t off = 0; off < z.size(); off += max_idat)
            chart_detail::put_chunk(out, "IDAT", z.data() + off, std::min(max_idat, z.size() - off));
        chart_detail::put_chunk(out, "IEND", nullptr, 0);
        return out;
    }

    void write_png(const std::string& path) const {
        const std::vector<std::uint8_t> png = render_png();
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        if (!f) throw dtfm::config_error("line_chart: cannot open '" + path + "' for writing");
        f.write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
        f.close();
        if (!f) throw dtfm::config_error("line_chart: cannot write '" + path + "'");
    }

private:
    struct series {
        std::string name;
        rgb colour;
        std::vector<double> xs, ys;
    };
    struct hline {
        std::string name;
        rgb colour;
        double y;
    };

    static constexpr int text_scale = 2, title_scale = 3, tick_len = 6;
    static constexpr rgb ink{30, 30, 30}, grid{225, 225, 225}, frame{90, 90, 90}, white{255, 255, 255};

    struct layout {
        chart_detail::axis xa, ya;
        int px0 = 0, py0 = 0, px1 = 0, py1 = 0;  // plot area, inclusive
        box legend{0, 0, -1, -1};
        // Halves of values, as in make_axis, so that huge ranges do not overflow.
        double fx(double x) const { return px0 + (x * 0.5 - xa.lo * 0.5) / (xa.hi * 0.5 - xa.lo * 0.5) * (px1 - px0); }
        double fy(double y) const { return py1 - (y * 0.5 - ya.lo * 0.5) / (ya.hi * 0.5 - ya.lo * 0.5) * (py1 - py0); }
    };

    struct canvas {
        int w, h;
        std::vector<std::uint8_t> px;
        box clip{0, 0, -1, -1};  // empty: the whole canvas

        void set(int x, int y, rgb c) {
            if (x < 0 || y < 0 || x >= w || y >= h) return;
            if (clip.x1 >= clip.x0 && (x < clip.x0 || x > clip.x1 || y < clip.y0 || y > clip.y1)) return;
            auto* p = px.data() + (static_cast<std::size_t>(y) * static_cast<std::size_t>(w) + static_cast<std::size_t>(x)) * 3;
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
        void fill(int x0, int y0, int x1, int y1, rgb c) {
            for (int y = y0; y <= y1; ++y)
                for (int x = x0; x <= x1; ++x) set(x, y, c);
        }
        void rect(int x0, int y0, int x1, int y1, rgb c) {
            fill(x0, y0, x1, y0, c);
            fill(x0, y1, x1, y1, c);
            fill(x0, y0, x0, y1, c);
            fill(x1, y0, x1, y1, c);
        }
        // A pixel index from a coordinate, clamped to [0, n - 1] before the cast (no overflow).
        static int to_index(double v, int n) { return static_cast<int>(std::clamp(v, 0.0, static_cast<double>(n - 1))); }
        // Every pixel whose centre lies within width/2 of the segment (x0,y0)-(x1,y1).
        void line(double x0, double y0, double x1, double y1, double width, rgb c) {
            if (!std::isfinite(x0) || !std::isfinite(y0) || !std::isfinite(x1) || !std::isfinite(y1)) return;
            const double r = width / 2;
            const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
            if (!std::isfinite(len2)) return;
            const int bx0 = to_index(std::floor(std::min(x0, x1) - r), w), bx1 = to_index(std::ceil(std::max(x0, x1) + r), w);
            const int by0 = to_index(std::floor(std::min(y0, y1) - r), h), by1 = to_index(std::ceil(std::max(y0, y1) + r), h);
            if (std::max(x0, x1) + r < 0 || std::min(x0, x1) - r > w || std::max(y0, y1) + r < 0 || std::min(y0, y1) - r > h)
                return;
            for (int y = by0; y <= by1; ++y)
                for (int x = bx0; x <= bx1; ++x) {
                    double t = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0.0;
                    t = std::clamp(t, 0.0, 1.0);
                    const double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
                    if (ex * ex + ey * ey <= r * r) set(x, y, c);
                }
        }
        // Markers: 0 circle, 1 square, 2 diamond; about 8 px across.
        void marker(double cx, double cy, int shape, rgb c) {
            if (!(std::abs(cx) < 1e6 && std::abs(cy) < 1e6)) return;  // also NaN
            const int x0 = static_cast<int>(std::floor(cx - 5)), y0 = static_cast<int>(std::floor(cy - 5));
            for (int y = y0; y <= y0 + 11; ++y)
                for (int x = x0; x <= x0 + 11; ++x) {
                    const double ex = std::abs(x - cx), ey = std::abs(y - cy);
                    const bool in = shape == 0 ? ex * ex + ey * ey <= 4.0 * 4.0
                                    : shape == 1 ? ex <= 3.5 && ey <= 3.5
                                                 : ex + ey <= 4.8;
                    if (in) set(x, y, c);
                }
        }
        void text(int x, int y, std::string_view s, int scale, rgb c) {  // (x, y): top left
            for (std::size_t i = 0; i < s.size(); ++i)
                for (int row = 0; row < chart_detail::glyph_h; ++row)
                    for (int col = 0; col < chart_detail::glyph_w; ++col)
                        if (chart_detail::glyph_ink(s[i], col, row))
                            fill(x + (static_cast<int>(i) * chart_detail::cell_w + col) * scale, y + row * scale,
                                 x + (static_cast<int>(i) * chart_detail::cell_w + col) * scale + scale - 1,
                                 y + row * scale + scale - 1, c);
        }
        // Text turned 90 degrees counter-clockwise, read bottom to top; (x, y): bottom left.
        void text_up(int x, int y, std::string_view s, int scale, rgb c) {
            for (std::size_t i = 0; i < s.size(); ++i)
                for (int row = 0; row < chart_detail::glyph_h; ++row)
                    for (int col = 0; col < chart_detail::glyph_w; ++col)
                        if (chart_detail::glyph_ink(s[i], col, row)) {
                            const int along = (static_cast<int>(i) * chart_detail::cell_w + col) * scale;
                            fill(x + row * scale, y - along - scale + 1, x + row * scale + scale - 1, y - along, c);
                        }
        }
    };

    static bool finite(double v) { return std::isfinite(v); }

    layout make_layout() const {
        constexpr double inf = std::numeric_limits<double>::infinity();
        double xlo = inf, xhi = -inf, ylo = inf, yhi = -inf;
        for (const series& s : series_)
            for (std::size_t i = 0; i < s.xs.size(); ++i)
                if (finite(s.xs[i]) && finite(s.ys[i])) {
                    xlo = std::min(xlo, s.xs[i]);
                    xhi = std::max(xhi, s.xs[i]);
                    ylo = std::min(ylo, s.ys[i]);
                    yhi = std::max(yhi, s.ys[i]);
                }
        for (const hline& hl : hlines_)
            if (finite(hl.y)) {
                ylo = std::min(ylo, hl.y);
                yhi = std::max(yhi, hl.y);
            }
        layout l;
        const int ch = chart_detail::glyph_h * text_scale;  // text height
        l.py0 = title_.empty() ? 20 : 14 + chart_detail::glyph_h * title_scale + 16;
        l.py1 = h_ - 1 - (tick_len + 6 + ch + (x_label_.empty() ? 0 : 14 + ch) + 14);

        // About five ticks an axis, fewer where their labels would touch.
        for (int target : {5, 3, 2}) {
            l.ya = chart_detail::make_axis(ylo, yhi, target);
            if (l.ya.ticks.size() < 2 || l.fy(l.ya.ticks[0]) - l.fy(l.ya.ticks[1]) >= ch + 6) break;
        }
        int ytick_w = 0;
        for (const auto& s : l.ya.labels) ytick_w = std::max(ytick_w, chart_detail::text_width(s, text_scale));
        l.px0 = std::min(14 + (y_label_.empty() ? 0 : ch + 14) + ytick_w + 6 + tick_len, w_ / 2);
        for (int target : {5, 3, 2}) {
            l.xa = chart_detail::make_axis(xlo, xhi, target);
            int right = 24, label_w = 0;
            for (const auto& s : l.xa.labels) label_w = std::max(label_w, chart_detail::text_width(s, text_scale));
            if (!l.xa.labels.empty())
                right = std::max(right, chart_detail::text_width(l.xa.labels.back(), text_scale) / 2 + 6);
            l.px1 = w_ - 1 - std::min(right, w_ / 4);
            if (l.xa.ticks.size() < 2 || l.fx(l.xa.ticks[1]) - l.fx(l.xa.ticks[0]) >= label_w + 12) break;
        }

        // Legend: top right inside the plot area, one row per named series or line.
        int rows = 0, name_w = 0;
        auto count = [&](const std::string& name) {
            if (name.empty()) return;
            ++rows;
            name_w = std::max(name_w, chart_detail::text_width(name, text_scale));
        };
        for (const series& s : series_) count(s.name);
        for (const hline& hl : hlines_) count(hl.name);
        if (rows > 0) {
            const int bw = 10 + swatch_w + 8 + name_w + 10, bh = 8 + rows * row_h + 2;
            l.legend = {std::max(l.px0 + 2, l.px1 - 10 - bw), l.py0 + 10, l.px1 - 10, l.py0 + 10 + bh};
        }
        return l;
    }

    static constexpr int swatch_w = 30, row_h = 22;

    void draw(canvas& cv) const {
        const layout l = make_layout();
        const int ch = chart_detail::glyph_h * text_scale;

        // Grid, then the plot frame.
        for (double t : l.xa.ticks) {
            const int x = static_cast<int>(std::lround(l.fx(t)));
            cv.fill(x, l.py0, x, l.py1, grid);
        }
        for (double t : l.ya.ticks) {
            const int y = static_cast<int>(std::lround(l.fy(t)));
            cv.fill(l.px0, y, l.px1, y, grid);
        }
        cv.rect(l.px0 - 1, l.py0 - 1, l.px1 + 1, l.py1 + 1, frame);

        // Ticks and their labels.
        for (std::size_t i = 0; i < l.xa.ticks.size(); ++i) {
            const int x = static_cast<int>(std::lround(l.fx(l.xa.ticks[i])));
            cv.fill(x, l.py1 + 2, x, l.py1 + 1 + tick_len, frame);
            const std::string& s = l.xa.labels[i];
            cv.text(x - chart_detail::text_width(s, text_scale) / 2, l.py1 + 2 + tick_len + 6, s, text_scale, ink);
        }
        for (std::size_t i = 0; i < l.ya.ticks.size(); ++i) {
            const int y = static_cast<int>(std::lround(l.fy(l.ya.ticks[i])));
            cv.fill(l.px0 - 1 - tick_len, y, l.px0 - 2, y, frame);
            const std::string& s = l.ya.labels[i];
            cv.text(l.px0 - 2 - tick_len - 6 - chart_detail::text_width(s, text_scale), y - ch / 2, s, text_scale, ink);
        }

        // Title (centred on the plot), axis labels.
        const int plot_cx = (l.px0 + l.px1) / 2, plot_cy = (l.py0 + l.py1) / 2;
        if (!title_.empty()) {
            const int ts = chart_detail::text_width(title_, title_scale) <= w_ - 8 ? title_scale : text_scale;
            cv.text(std::max(2, plot_cx - chart_detail::text_width(title_, ts) / 2), 14, title_, ts, ink);
        }
        if (!x_label_.empty())
            cv.text(plot_cx - chart_detail::text_width(x_label_, text_scale) / 2, l.py1 + 2 + tick_len + 6 + ch + 14,
                    x_label_, text_scale, ink);
        if (!y_label_.empty())
            cv.text_up(14, plot_cy + chart_detail::text_width(y_label_, text_scale) / 2, y_label_, text_scale, ink);

        // Data, clipped to the plot area: reference lines under the series.
        cv.clip = {l.px0, l.py0, l.px1, l.py1};
        for (const hline& hl : hlines_) {
            if (!finite(hl.y)) continue;
            const double y = l.fy(hl.y);
            for (int x = l.px0; x <= l.px1; x += 14) cv.line(x, y, std::min(x + 8, l.px1), y, 2.5, hl.colour);
        }
        for (std::size_t si = 0; si < series_.size(); ++si) {
            const series& s = series_[si];
            bool have_prev = false;
            double qx = 0, qy = 0;
            std::size_t n_finite = 0;
            for (std::size_t i = 0; i < s.xs.size(); ++i) {
                if (!finite(s.xs[i]) || !finite(s.ys[i])) {
                    have_prev = false;
                    continue;
                }
                ++n_finite;
                const double x = l.fx(s.xs[i]), y = l.fy(s.ys[i]);
                if (have_prev) cv.line(qx, qy, x, y, 2.5, s.colour);
                qx = x;
                qy = y;
                have_prev = true;
            }
            const std::size_t stride = std::max<std::size_t>(1, (n_finite + 59) / 60);
            std::size_t k = 0;
            for (std::size_t i = 0; i < s.xs.size(); ++i) {
                if (!finite(s.xs[i]) || !finite(s.ys[i])) continue;
                if (k++ % stride == 0 || k == n_finite)
                    cv.marker(std::round(l.fx(s.xs[i])), std::round(l.fy(s.ys[i])), static_cast<int>(si % 3), s.colour);
            }
        }
        cv.clip = {0, 0, -1, -1};

        // Legend on top.
        const box& b = l.legend;
        if (b.x1 >= b.x0) {
            cv.fill(b.x0, b.y0, b.x1, b.y1, white);
            cv.rect(b.x0, b.y0, b.x1, b.y1, frame);
            int y = b.y0 + 8;
            const int sx0 = b.x0 + 10, sx1 = sx0 + swatch_w, tx = sx1 + 8;
            for (std::size_t si = 0; si < series_.size(); ++si) {
                const series& s = series_[si];
                if (s.name.empty()) continue;
                const int cy = y + ch / 2;
                cv.line(sx0, cy, sx1, cy, 2.5, s.colour);
                cv.marker((sx0 + sx1) / 2, cy, static_cast<int>(si % 3), s.colour);
                cv.text(tx, y, s.name, text_scale, ink);
                y += row_h;
            }
            for (const hline& hl : hlines_) {
                if (hl.name.empty()) continue;
                const int cy = y + ch / 2;
                for (int x = sx0; x <= sx1; x += 14) cv.line(x, cy, std::min(x + 8, sx1), cy, 2.5, hl.colour);
                cv.text(tx, y, hl.name, text_scale, ink);
                y += row_h;
            }
        }
    }

    int w_, h_;
    std::string title_, x_label_, y_label_;
    std::vector<series> series_;
    std::vector<hline> hlines_;
};

}  // namespace dtfm::examples
