"""The tamper-evident ledger: an append-only Merkle-tree log (RFC 9162) of e-contracts,
collateral registrations and every act, with signed tree heads and proofs a third party can
check. Pure rules; storage and signing keys are at the edges."""
