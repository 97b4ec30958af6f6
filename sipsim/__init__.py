"""Simulated phones for the tests, the benchmarks and the README's demo call: sipp
scenarios for citizens (:mod:`sipsim.citizen`) and operator seats (:mod:`sipsim.seat`), and
RFC 4733 DTMF keys as pcaps (:mod:`sipsim.dtmf`). Needs the ``sipp`` binary (Debian
``sip-tester``), which scripts/setup.sh installs."""
