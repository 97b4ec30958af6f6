"""Work orders: the closed loop from a citizen's request to its archived, revisited answer.

Accept → answer directly or dispatch → sign or return → handle (extension) → reply → review
→ revisit → archive, with rework, supervision and merging of duplicates. The rules
(states, time limits, dispatch catalogue) are plain Python; :mod:`workorders.service` stores
them in SQL and :mod:`workorders.http` / :mod:`workorders.open311` put them on the web.
"""
