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

__all__ = ["MemRequest", "MemPort", "DramPort", "MemArbiter"]


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
    ``req_ready`` are both high. ``req_valid`` may fall again without a transfer and the other
    fields matter only while it is high (the arbiter may switch clients while the memory is
    not ready). A
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

    Members
    -------
    clients : In(MemPort).array(n_clients)
    dram : Out(DramPort)
    stop : In(1)
        Grants nothing while high (the machine stopped on an error).
    read_beat, write_beat : Out(1)
        A read or write beat was issued this cycle (performance counters).
    refused : Out(1)
        A client asked and the memory was not ready (performance counter).
    """

    def __init__(self, config, n_clients):
        self._n = n_clients
        self._tag_bits = max(1, (n_clients - 1).bit_length())
        super().__init__({
            "clients": In(MemPort(config)).array(n_clients),
            "dram": Out(DramPort(config, self._tag_bits)),
            "stop": In(1),
            "read_beat": Out(1),
            "write_beat": Out(1),
            "refused": Out(1),
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
        asking, fire = Signal(), Signal()
        m.d.comb += [asking.eq(any_valid & ~self.stop), fire.eq(asking & self.dram.req_ready)]
        for idx, client in enumerate(self.clients):
            m.d.comb += [
                client.req.ready.eq(fire & (grant == idx)),
                client.resp_valid.eq(self.dram.resp_valid & (self.dram.resp_tag == idx)),
                client.resp_data.eq(self.dram.resp_data),
            ]
            with m.If(grant == idx):
                m.d.comb += [
                    self.dram.req_write.eq(client.req.payload.write),
                    self.dram.req_addr.eq(client.req.payload.addr),
                    self.dram.req_wdata.eq(client.req.payload.wdata),
                    self.dram.req_wmask.eq(client.req.payload.wmask),
                ]
        m.d.comb += [
            self.dram.req_valid.eq(asking),
            self.dram.req_tag.eq(grant),
            self.read_beat.eq(fire & ~self.dram.req_write),
            self.write_beat.eq(fire & self.dram.req_write),
            self.refused.eq(asking & ~self.dram.req_ready),
        ]
        with m.If(fire):
            m.d.sync += last.eq(grant)
        return m
