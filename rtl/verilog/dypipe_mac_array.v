// The PFU's multiply-accumulate array: on a clock edge with en high, row r of sums becomes the
// sum over c of the signed 16-bit products w[r*C + c] * x[c]. Without en nothing is computed,
// so a simulator skips the array while it idles. (rtl/pfu.py has the same array in Amaranth
// for Amaranth's own simulator; tests/test_two_simulators.py checks they agree.)
module dypipe_mac_array #(
    parameter R = 4,
    parameter C = 8,
    parameter SUM_BITS = 36
) (
    input clk,
    input en,
    input [16*C-1:0] x,
    input [16*R*C-1:0] w,
    output reg [SUM_BITS*R-1:0] sums
);
    integer r, c;
    reg signed [SUM_BITS-1:0] acc;
    always @(posedge clk) begin
        if (en) begin
            for (r = 0; r < R; r = r + 1) begin
                acc = 0;
                for (c = 0; c < C; c = c + 1)
                    acc = acc + $signed(w[16*(r*C + c) +: 16]) * $signed(x[16*c +: 16]);
                sums[SUM_BITS*r +: SUM_BITS] <= acc;
            end
        end
    end
endmodule
