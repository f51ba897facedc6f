"""Per-key limits and budgets (sans-I/O arithmetic) and the thin shell that asks the state
store (`gate.py`).

    plan.py      which store checks a request needs (windows, leases, budget counters)
    decide.py    admission result -> admitted or the 429 to answer, and the headers
    headers.py   Anthropic, OpenAI and unified (budget) header values
    budgets.py   calendar periods and each budget's standing (used, cap, reset)
    pricing.py   cost of tokens for a model as served
    gate.py      the I/O shell: admit before upstream, settle when the answer ends
"""
