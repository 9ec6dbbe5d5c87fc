"""The accelerator's single memory port and the arbiter that shares it.

One beat (``config.dram_bytes_per_cycle``) moves per cycle, read or write: loads and stores
share the bandwidth. The memory sits outside the accelerator, behind :func:`DramPort`: in
simulation the Verilog ``dypipe_dram`` (the harness wraps the top and it), on an FPGA a memory
controller. Reads return in request order, tagged with the requester's number; nominally
``config.dram_latency`` cycles after the request, but the accelerator works with any latency
and with back-pressure on requests (``req_ready``).
"""

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .skid import SkidBuffer

__all__ = ["MemRequest", "MemPort", "DramPort", "MemArbiter", "ARBITER_LATENCY"]

#: Cycles from a client handing a request over to the memory seeing it: the arbiter's output
#: register (``MemArbiter``).
ARBITER_LATENCY = 1


def MemRequest(config):
    """One request of a memory client: a read, or a write of the bytes of ``wdata`` that
    ``wmask`` selects, at beat ``addr``."""
    return data.StructLayout({"write": 1, "addr": config.dram_addr_bits,
                              "wdata": config.beat_bits, "wmask": config.dram_bytes_per_cycle})


def MemPort(config):
    """A client's port, from the client's side: ``req`` is a stream of :func:`MemRequest`; a
    read's data arrives later on ``resp_valid`` / ``resp_data``, in request order, always
    accepted."""
    return wiring.Signature({
        "req": Out(stream.Signature(MemRequest(config))),
        "resp_valid": In(1), "resp_data": In(config.beat_bits),
    })


def DramPort(config, tag_bits):
    """The memory port, from the accelerator's side.

    Requests: a request (read or write of one beat) moves in a cycle where ``req_valid`` and
    ``req_ready`` are both high. All request outputs are flip-flops (the arbiter's output
    register), and once ``req_valid`` is high it and the other fields hold until the request
    moves; the fields matter only while it is high. A
    write stores the bytes of ``req_wdata`` selected by ``req_wmask`` (bit ``i``: bits
    ``8i .. 8i+7``). Addresses are in beats.
    Responses: every read is answered once, in request order, by one cycle of ``resp_valid``
    with the beat as it was when the read was accepted and the request's ``req_tag``; they
    cannot be refused (the accelerator always has room for the reads it has issued), any
    number of cycles later (at least one).
    """
    return wiring.Signature({
        "req_valid": Out(1), "req_ready": In(1), "req_write": Out(1),
        "req_addr": Out(config.dram_addr_bits),
        "req_wdata": Out(config.beat_bits), "req_wmask": Out(config.dram_bytes_per_cycle),
        "req_tag": Out(tag_bits),
        "resp_valid": In(1), "resp_data": In(config.beat_bits), "resp_tag": In(tag_bits),
    })


class MemArbiter(wiring.Component):
    """Round-robin arbiter of ``n_clients`` :func:`MemPort` clients onto one :func:`DramPort`.

    The requests it grants go through a :class:`~dypipe.rtl.skid.SkidBuffer` to the memory,
    so the port's outputs are flip-flops and its ``req_ready`` reaches only the buffer, not
    the clients' ``ready`` (on an FPGA the memory controller, like the pins of
    ``dypipe synth``'s wrapper, may lie far from the clients). A request reaches the memory
    :data:`ARBITER_LATENCY` cycles after its client handed it over, in the order handed over,
    so a write a client has handed over (a store's ``done``) is ahead of every later read.

    Members
    -------
    clients : In(MemPort).array(n_clients)
    dram : Out(DramPort)
    stop : In(1)
        Grants nothing while high (the machine stopped on an error); requests already handed
        over still go out.
    read_beat, write_beat : Out(1)
        A read or write beat was issued this cycle (performance counters).
    refused : Out(1)
        A request waited and the memory was not ready (performance counter).
    idle : Out(1)
        No request handed over is still on its way to the memory (``done`` waits for it).
    """

    def __init__(self, config, n_clients):
        self._config, self._n = config, n_clients
        self._tag_bits = max(1, (n_clients - 1).bit_length())
        super().__init__({
            "clients": In(MemPort(config)).array(n_clients),
            "dram": Out(DramPort(config, self._tag_bits)),
            "stop": In(1),
            "read_beat": Out(1),
            "write_beat": Out(1),
            "refused": Out(1),
            "idle": Out(1),
        })

    @property
    def tag_bits(self):
        return self._tag_bits

    def elaborate(self, platform):
        m = Module()
        n = self._n
        last = Signal(range(n))
        grant = Signal(range(n))
        any_valid = Signal()
        # Priority starts after the last grant: scan clients last+1 .. last+n.
        for offset in reversed(range(1, n + 1)):
            for start in range(n):
                idx = (start + offset) % n
                with m.If((last == start) & self.clients[idx].req.valid):
                    m.d.comb += [grant.eq(idx), any_valid.eq(1)]
        m.submodules.out = out = SkidBuffer(data.StructLayout({
            "req": MemRequest(self._config), "tag": self._tag_bits}))
        fire = Signal()
        m.d.comb += [out.i.valid.eq(any_valid & ~self.stop), fire.eq(out.i.valid & out.i.ready),
                     out.i.payload.tag.eq(grant)]
        for idx, client in enumerate(self.clients):
            m.d.comb += [
                client.req.ready.eq(fire & (grant == idx)),
                client.resp_valid.eq(self.dram.resp_valid & (self.dram.resp_tag == idx)),
                client.resp_data.eq(self.dram.resp_data),
            ]
            with m.If(grant == idx):
                m.d.comb += out.i.payload.req.eq(client.req.payload)
        with m.If(fire):
            m.d.sync += last.eq(grant)
        req = out.o.payload.req
        beat = out.o.valid & self.dram.req_ready
        m.d.comb += [
            self.dram.req_valid.eq(out.o.valid),
            self.dram.req_write.eq(req.write),
            self.dram.req_addr.eq(req.addr),
            self.dram.req_wdata.eq(req.wdata),
            self.dram.req_wmask.eq(req.wmask),
            self.dram.req_tag.eq(out.o.payload.tag),
            out.o.ready.eq(self.dram.req_ready),
            self.read_beat.eq(beat & ~req.write),
            self.write_beat.eq(beat & req.write),
            self.refused.eq(out.o.valid & ~self.dram.req_ready),
            self.idle.eq(out.held == 0),
        ]
        return m
