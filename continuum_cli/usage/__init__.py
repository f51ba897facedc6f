"""The usage ledger: what each request used, recorded in the state store, summed by
`continuum usage` and `GET /admin/usage`.

    observe.py   token counts read from the answer as it leaves (JSON or SSE), sans-I/O
    report.py    ledger records -> grouped totals and cost (the JSON both readers return)
    meter.py     the per-request shell: admission, headers, settlement, the ledger record
"""
