// On-chip SRAM bank of the global buffer: two write ports with lane enables and two
// registered read ports (read-before-write). Written as plain Verilog so that a large bank
// needs no zero-fill initial block (see docs/architecture.md, "Global buffer").
// A port whose enable is low does nothing; writes of both ports to one lane of one row in the
// same cycle are not allowed (the dispatcher never issues tasks that could do that).
module dypipe_sram #(
    parameter WIDTH = 64,
    parameter DEPTH = 256,
    parameter ADDR_BITS = 8,
    parameter LANES = 1
) (
    input clk,
    input [LANES-1:0] w0_en,
    input [ADDR_BITS-1:0] w0_addr,
    input [WIDTH-1:0] w0_data,
    input [LANES-1:0] w1_en,
    input [ADDR_BITS-1:0] w1_addr,
    input [WIDTH-1:0] w1_data,
    input r0_en,
    input [ADDR_BITS-1:0] r0_addr,
    output reg [WIDTH-1:0] r0_data,
    input r1_en,
    input [ADDR_BITS-1:0] r1_addr,
    output reg [WIDTH-1:0] r1_data
);
    localparam LANE = WIDTH / LANES;
    reg [WIDTH-1:0] mem [0:DEPTH-1];

    always @(posedge clk) begin
        if (r0_en) r0_data <= mem[r0_addr];
        if (r1_en) r1_data <= mem[r1_addr];
    end

    genvar i;
    generate
        for (i = 0; i < LANES; i = i + 1) begin : lane
            always @(posedge clk) begin
                if (w0_en[i]) mem[w0_addr][i*LANE +: LANE] <= w0_data[i*LANE +: LANE];
                if (w1_en[i]) mem[w1_addr][i*LANE +: LANE] <= w1_data[i*LANE +: LANE];
            end
        end
    endgenerate
endmodule
