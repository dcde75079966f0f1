"""DNS: the records the config implies, a zone generator, and the check of what is published.

- `resolver`: the `Resolver` protocol (dnspython implementation, `MockResolver` for tests), with the
  DNSSEC AD bit trusted only from a resolver configured as trusted (RFC 6840 §5.7).
- `records`: one frozen dataclass per published format, each with `parse(text)` and `to_text()`.
- `zone`: config → `RecordSpec` list → annotated BIND zone text (`mox dns zone`).
- `check`: `mox dnscheck`, the published DNS compared with what the config implies.
"""
