// The PFU's multiply-accumulate array: on a clock edge with en high, row r of sums becomes the
// sum over c of the signed 16-bit products w[r*C + c] * x[c]. Without en nothing is computed,
// so a simulator skips the array while it idles. (rtl/pfu.py has the same array in Amaranth
// for Amaranth's own simulator; tests/test_two_simulators.py checks they agree.)
//
// A row's products are summed by the same balanced tree as rtl/pfu.py's tree_sum: neighbours
// are added in pairs, level by level, an odd last term passing up unchanged. Any order gives
// the same sum, but with the same tree `dypipe equiv` finds the same multipliers and adders on
// both sides and proves the twin by its structure; a chain of additions against a tree was
// beyond the solver even at 4 x 8. The tree lives in a function so that its temporaries are
// assigned in full on every call and hold no state.
module dypipe_mac_array #(
    parameter integer R = 4,
    parameter integer C = 8,
    parameter integer SUM_BITS = 36
) (
    input clk,
    input en,
    input [16*C-1:0] x,
    input [16*R*C-1:0] w,
    output reg [SUM_BITS*R-1:0] sums
);
    function [SUM_BITS-1:0] row_sum(input [16*C-1:0] wr, input [16*C-1:0] xr);
        reg [SUM_BITS*C-1:0] t;     // the current level of the tree, term i at SUM_BITS*i
        integer c, n, i;
        begin
            for (c = 0; c < C; c = c + 1)
                t[SUM_BITS*c +: SUM_BITS] = $signed(wr[16*c +: 16]) * $signed(xr[16*c +: 16]);
            // In place: term i of the next level reads terms 2i and 2i + 1 of this one,
            // which no earlier term of the next level overwrote.
            for (n = C; n > 1; n = (n + 1) / 2)
                for (i = 0; i < (n + 1) / 2; i = i + 1)
                    if (2*i + 1 < n)
                        t[SUM_BITS*i +: SUM_BITS] = $signed(t[SUM_BITS*2*i +: SUM_BITS])
                                                    + $signed(t[SUM_BITS*(2*i + 1) +: SUM_BITS]);
                    else
                        t[SUM_BITS*i +: SUM_BITS] = t[SUM_BITS*2*i +: SUM_BITS];
            row_sum = t[SUM_BITS-1:0];
        end
    endfunction

    integer r;
    always @(posedge clk)
        if (en)
            for (r = 0; r < R; r = r + 1)
                sums[SUM_BITS*r +: SUM_BITS] <= row_sum(w[16*C*r +: 16*C], x);
endmodule
