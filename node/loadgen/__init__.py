"""The load generator behind ``edgerank bench latency``.

Open-loop: requests leave at Poisson arrival times fixed in advance (a
shared schedule split across worker processes), whether or not earlier
responses came back, and each latency is measured from the request's
*intended* send time, so that a stalled server is charged for every request
it delayed (no coordinated omission). The worker processes are
``edgerank-loadgen`` (Rust, ``hotpath/loadgen``); their per-request records
go into HDR histograms, merged here.

One concern per module: ``schedule`` (arrival times), ``histogram`` (HDR
recording and merging), ``requests`` (which users to ask for), ``result``
(a run's figures from the workers' records), ``workers`` (the
``edgerank-loadgen`` processes and merging their results), ``search`` (the
maximum sustainable rate), ``local_node`` (a node started for the
benchmark), ``proxy`` (a loopback TCP proxy that adds latency or goes down),
``faults`` (injecting a fault while the load runs), ``scrape`` (the node's
own /metrics over a run), ``latency`` (the whole
benchmark) and ``report`` (tables and text histograms).
"""
