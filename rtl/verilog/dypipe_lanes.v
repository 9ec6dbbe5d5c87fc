// Lane arithmetic of the PFU, computed only on clock edges that need it (a simulator then
// skips it while the PFU idles; rtl/lanes.py has the same logic in Amaranth for Amaranth's own
// simulator, and tests/test_two_simulators.py checks that the two agree).
//
// dypipe_lane_fold: the vector unit's window fold. On en, lane i of acc becomes d[i] on the
// window's first row, else max(acc, d) (MAX), acc's low element * d (MUL: its window is two
// rows, so acc holds the first row's element), acc (COPY) or acc + d.
//
// dypipe_lane_finish: write-back. On en, lane i of out becomes act(saturate(v)), where v is
// (in + 2^(F+W-1)) >>> (F+W) for the MAC array (VEC = 0; W = wshift, the weights' extra fraction
// bits) and, for the vector unit (VEC = 1), (in + 2^(AVG_SHIFT-1)) >>> AVG_SHIFT for AVG
// (in is the window sum times the scale: the vector unit multiplies in the cycle before),
// (in + 2^(F-1)) >>> F for MUL, in otherwise. The activation is none, ReLU, or sigmoid /
// tanh by the piecewise-linear tables of sw/pwl.py, passed in as parameters (SEGMENTS entries of
// CB-bit slope and intercept each).
//
// The codes and widths of fn (VecFn) and act (Act) are parameters too, set by rtl/lanes.py
// from sw/isa.py, and so are the element's and the fold's widths (ELEM_BITS, FOLD_BITS, from
// dypipe/config.py and rtl/lanes.py): their defaults here are placeholders, never used.
//
// Integer parameters are declared `integer`: an untyped parameter takes the type of the value
// it is overridden with, and Amaranth passes unsigned 32-bit values, which made
// `(xc >>> shift) + SEGMENTS / 2` unsigned (a wrong segment for negative x) in Yosys; the
// simulation build happened to compute it signed. `dypipe equiv` found it.

module dypipe_lane_fold #(
    parameter integer N = 8,
    parameter integer ELEM_BITS = 16,
    parameter integer FOLD_BITS = 32,
    parameter integer FN_BITS = 1,
    parameter integer FN_MAX = 7,
    parameter integer FN_MUL = 7,
    parameter integer FN_COPY = 7
) (
    input clk,
    input en,
    input first,
    input [FN_BITS-1:0] fn,
    input [ELEM_BITS*N-1:0] d,
    output reg [FOLD_BITS*N-1:0] acc
);
    integer i;
    reg signed [FOLD_BITS-1:0] a, x;
    always @(posedge clk) begin
        if (en) begin
            for (i = 0; i < N; i = i + 1) begin
                a = acc[FOLD_BITS*i +: FOLD_BITS];
                x = {{(FOLD_BITS - ELEM_BITS){d[ELEM_BITS*i + ELEM_BITS - 1]}},
                     d[ELEM_BITS*i +: ELEM_BITS]};
                if (first) a = x;
                else if (fn == FN_MAX) a = (x > a) ? x : a;
                else if (fn == FN_MUL) a = $signed(a[ELEM_BITS-1:0]) * x;
                else if (fn != FN_COPY) a = a + x;
                acc[FOLD_BITS*i +: FOLD_BITS] <= a;
            end
        end
    end
endmodule

module dypipe_lane_finish #(
    parameter integer N = 8,
    parameter integer ELEM_BITS = 16,
    parameter integer FN_BITS = 1,
    parameter integer ACT_BITS = 1,
    parameter integer IN_BITS = 32,
    parameter integer F = 8,
    parameter integer VEC = 0,
    parameter integer AVG_SHIFT = 16,
    parameter integer SEGMENTS = 16,
    parameter integer CB = 18,
    parameter integer SIG_SHIFT = 8,
    parameter integer TANH_SHIFT = 7,
    parameter integer FN_AVG = 7,
    parameter integer FN_MUL = 7,
    parameter integer ACT_RELU = 7,
    parameter integer ACT_SIGMOID = 7,
    parameter integer ACT_TANH = 7,
    parameter [SEGMENTS*CB-1:0] SIG_SLOPE = 0,
    parameter [SEGMENTS*CB-1:0] SIG_INTER = 0,
    parameter [SEGMENTS*CB-1:0] TANH_SLOPE = 0,
    parameter [SEGMENTS*CB-1:0] TANH_INTER = 0
) (
    input clk,
    input en,
    input [FN_BITS-1:0] fn,
    input [ACT_BITS-1:0] act,
    input [3:0] wshift,
    input [N*IN_BITS-1:0] in,
    output reg [ELEM_BITS*N-1:0] out
);
    localparam signed [63:0] ELEM_MAX = (64'sd1 <<< (ELEM_BITS - 1)) - 1;
    localparam signed [63:0] ELEM_MIN = -(64'sd1 <<< (ELEM_BITS - 1));

    function signed [ELEM_BITS-1:0] saturate(input signed [63:0] v);
        saturate = (v > ELEM_MAX) ? ELEM_MAX[ELEM_BITS-1:0]
                 : (v < ELEM_MIN) ? ELEM_MIN[ELEM_BITS-1:0] : v[ELEM_BITS-1:0];
    endfunction

    function signed [ELEM_BITS-1:0] pwl(input signed [ELEM_BITS-1:0] x, input integer shift,
                                        input [SEGMENTS*CB-1:0] slopes,
                                        input [SEGMENTS*CB-1:0] inters);
        reg signed [ELEM_BITS-1:0] xc;
        reg signed [CB-1:0] slope, inter;
        integer seg;
        reg signed [63:0] lo, hi, y;
        begin
            lo = -((SEGMENTS / 2) <<< shift);
            hi = ((SEGMENTS / 2) <<< shift) - 1;
            xc = (x < lo) ? lo[ELEM_BITS-1:0] : (x > hi) ? hi[ELEM_BITS-1:0] : x;
            seg = (xc >>> shift) + SEGMENTS / 2;
            slope = slopes[CB*seg +: CB];
            inter = inters[CB*seg +: CB];
            y = (slope * xc + (inter <<< F) + (64'sd1 <<< (F - 1))) >>> F;
            pwl = saturate(y);
        end
    endfunction

    integer i;
    reg signed [63:0] v;
    reg signed [ELEM_BITS-1:0] s;
    always @(posedge clk) begin
        if (en) begin
            for (i = 0; i < N; i = i + 1) begin
                v = $signed(in[IN_BITS*i +: IN_BITS]);
                if (VEC == 0) v = (v + (64'sd1 <<< (F + wshift - 1))) >>> (F + wshift);
                else if (fn == FN_MUL) v = (v + (64'sd1 <<< (F - 1))) >>> F;
                else if (fn == FN_AVG) v = (v + (64'sd1 <<< (AVG_SHIFT - 1))) >>> AVG_SHIFT;
                s = saturate(v);
                if (act == ACT_RELU) s = (s < 0) ? {ELEM_BITS{1'b0}} : s;
                else if (act == ACT_SIGMOID) s = pwl(s, SIG_SHIFT, SIG_SLOPE, SIG_INTER);
                else if (act == ACT_TANH) s = pwl(s, TANH_SHIFT, TANH_SLOPE, TANH_INTER);
                out[ELEM_BITS*i +: ELEM_BITS] <= s;
            end
        end
    end
endmodule
