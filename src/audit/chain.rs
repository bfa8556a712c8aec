//! The evidence chain as a whole: checked record by record, and against the chain heads
//! that have left the database, so that an edit, a removal (the newest records too) or a
//! rewrite with recomputed hashes is named.
//!
//! A chain head is a record's number with its hash, written `SEQ:HASH`. Every delivered
//! compliance check carries the head it covered, and keeps it beside the check; an auditor
//! can keep any head (from a check's message or a report) and pass it to
//! `ci-bridge audit verify --anchor SEQ:HASH`. Someone who can write the database can
//! rewrite the chain and the kept heads alike; a head kept outside cannot be rewritten.

use std::fmt;

use serde::Serialize;

use super::evidence;
use crate::store::{EvidenceRow, Store};

/// A record's number and hash: what the chain looked like up to there.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Head {
    /// Parses `SEQ:HASH` (a positive number and 64 hex digits).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (seq, hash) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| "an anchor is SEQ:HASH, e.g. 12:3f…".to_owned())?;
        let seq = seq
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "an anchor's SEQ is a record number from 1".to_owned())?;
        let hash = hash.to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("an anchor's HASH is 64 hex digits".into());
        }
        Ok(Self { seq, hash })
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// The chain, checked.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainState {
    pub intact: bool,
    pub records: usize,
    /// The newest record; keep it to notice a later rewrite or removal.
    pub head: Option<Head>,
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

impl ChainState {
    /// One line for people: what the chain is, or where it breaks.
    pub fn summary(&self) -> String {
        match (&self.broken_at, &self.head) {
            (Some(seq), _) => format!(
                "evidence chain broken at record {seq}: {}",
                self.reason.as_deref().unwrap_or("")
            ),
            (None, Some(head)) => format!(
                "evidence chain intact: {} record(s), head {head}",
                self.records
            ),
            (None, None) => "evidence chain intact: 0 record(s)".into(),
        }
    }
}

/// Checks the stored chain, against `anchors` and every head a delivered check kept.
pub async fn check(store: &Store, anchors: &[Head]) -> sqlx::Result<ChainState> {
    let rows = store.evidence(None).await?;
    let mut known: Vec<(Head, &str)> = anchors.iter().map(|h| (h.clone(), "the anchor")).collect();
    for (seq, hash) in store.delivered_heads().await? {
        known.push((Head { seq, hash }, "a delivered compliance check"));
    }
    Ok(state(&rows, &known))
}

/// The state of `rows` (the whole chain, oldest first) given heads seen elsewhere.
pub fn state(rows: &[EvidenceRow], known: &[(Head, &str)]) -> ChainState {
    let head = rows.last().map(|row| Head {
        seq: row.seq,
        hash: row.hash.clone(),
    });
    let broken = |seq: i64, reason: String| ChainState {
        intact: false,
        records: rows.len(),
        head: head.clone(),
        broken_at: Some(seq),
        reason: Some(reason),
    };
    if let Err(b) = evidence::verify(rows) {
        return broken(b.seq, b.reason);
    }
    // `verify` passed: the records are numbered 1, 2, … without a gap.
    for (seen, source) in known {
        let stored = usize::try_from(seen.seq - 1)
            .ok()
            .and_then(|index| rows.get(index));
        match stored {
            None => {
                return broken(
                    seen.seq,
                    format!(
                        "record {} is missing, though {source} saw the chain reach it \
                         (records removed from the end)",
                        seen.seq
                    ),
                )
            }
            Some(row) if row.hash != seen.hash => {
                return broken(
                    seen.seq,
                    format!(
                        "the record's hash is not the one {source} saw (the chain was rewritten)"
                    ),
                )
            }
            Some(_) => {}
        }
    }
    ChainState {
        intact: true,
        records: rows.len(),
        head,
        broken_at: None,
        reason: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::evidence::tests::{chain, chain_of};

    fn head_of(rows: &[EvidenceRow], seq: usize) -> Head {
        Head {
            seq: seq as i64,
            hash: rows[seq - 1].hash.clone(),
        }
    }

    #[test]
    fn removing_the_newest_records_breaks_the_chain_against_a_kept_head() {
        let rows = chain(3);
        let kept = [(head_of(&rows, 3), "the anchor")];
        assert!(state(&rows, &kept).intact);
        let truncated = &rows[..2];
        assert!(state(truncated, &[]).intact, "nothing to compare with");
        let broken = state(truncated, &kept);
        assert_eq!(broken.broken_at, Some(3));
        assert!(broken.reason.unwrap().contains("removed from the end"));
    }

    #[test]
    fn a_rewritten_chain_breaks_against_a_kept_head() {
        let rows = chain(3);
        let kept = [(head_of(&rows, 2), "a delivered compliance check")];
        // Recomputed from record 1 on, with other content: valid on its own.
        let rewritten = chain_of("c/d", 3);
        assert!(state(&rewritten, &[]).intact);
        let broken = state(&rewritten, &kept);
        assert_eq!(broken.broken_at, Some(2));
        assert!(broken.reason.unwrap().contains("rewritten"));
    }

    #[test]
    fn anchors_parse_from_seq_and_hash() {
        let hash = "ab".repeat(32);
        assert_eq!(Head::parse(&format!("7:{hash}")).unwrap().seq, 7);
        for bad in ["7", "0:ab", &format!("x:{hash}"), "7:xyz"] {
            assert!(Head::parse(bad).is_err(), "{bad}");
        }
    }
}
