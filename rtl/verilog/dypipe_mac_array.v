// The PFU's multiply-accumulate array, in two registered stages as DianNao's NFU-1 and NFU-2:
// on a clock edge with en high, the R x C signed products w[r*C + c] * x[c] of ELEM_BITS-bit
// elements enter their registers; on the next edge, row r of sums becomes the sum over c of
// row r's products. Without en (and on the cycle after, without its products) nothing is
// computed, so a simulator skips the array while it idles. Parameters are set by rtl/pfu.py
// from dypipe/config.py; the defaults are placeholders. (rtl/pfu.py's MacArray is the same
// array in Amaranth, its description; `dypipe equiv` proves the two equivalent.)
//
// A row's products are summed by the same balanced tree as rtl/pfu.py's tree_sum: neighbours
// are added in pairs, level by level, an odd last term passing up unchanged. Any order gives
// the same sum, but with the same tree `dypipe equiv` finds the same multipliers and adders on
// both sides and proves the twin by its structure; a chain of additions against a tree was
// beyond the solver even at 4 x 8. The tree's levels live in an unpacked array of native-width
// terms, assigned before they are read on every edge that sums, so they hold no state that
// matters; the loops unroll to constant indices (Yosys turns the array into registers). A wide
// packed vector with part-selects instead made Verilator shift multi-word values and nearly
// doubled the simulation time of compute-bound workloads.
module dypipe_mac_array #(
    parameter integer R = 4,
    parameter integer C = 8,
    parameter integer ELEM_BITS = 16,
    parameter integer SUM_BITS = 36
) (
    input clk,
    input en,
    input [ELEM_BITS*C-1:0] x,
    input [ELEM_BITS*R*C-1:0] w,
    output reg [SUM_BITS*R-1:0] sums
);
    // The products, row r's term c in p[r*C + c]; summing: p holds the last en's products.
    (* mem2reg *) reg signed [2*ELEM_BITS-1:0] p [0:R*C-1];
    reg summing = 1'b0;
    // The current level of a row's tree, term i in t[i]. mem2reg: Yosys makes it registers
    // (it would anyway, with a warning, as the array is assigned with `=` on a clock edge).
    (* mem2reg *) reg signed [SUM_BITS-1:0] t [0:C-1];
    integer r, c, n, i;
    always @(posedge clk) begin
        summing <= en;
        if (en)
            for (r = 0; r < R; r = r + 1)
                for (c = 0; c < C; c = c + 1)
                    p[r*C + c] <= $signed(w[ELEM_BITS*(r*C + c) +: ELEM_BITS])
                                  * $signed(x[ELEM_BITS*c +: ELEM_BITS]);
        if (summing)
            for (r = 0; r < R; r = r + 1) begin
                for (c = 0; c < C; c = c + 1)
                    t[c] = p[r*C + c];
                // In place: term i of the next level reads terms 2i and 2i + 1 of this one,
                // which no earlier term of the next level overwrote.
                for (n = C; n > 1; n = (n + 1) / 2)
                    for (i = 0; i < (n + 1) / 2; i = i + 1)
                        if (2*i + 1 < n)
                            t[i] = t[2*i] + t[2*i + 1];
                        else
                            t[i] = t[2*i];
                sums[SUM_BITS*r +: SUM_BITS] <= t[0];
            end
    end
endmodule
