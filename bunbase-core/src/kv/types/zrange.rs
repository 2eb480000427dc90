//! ZRANGE (Redis 6.2 syntax: BYSCORE / BYLEX / REV / LIMIT / WITHSCORES)
//! and its older forms ZREVRANGE, Z[REV]RANGEBYSCORE, Z[REV]RANGEBYLEX:
//! one parser that follows Redis's order of checks (so the same input
//! gets the same error), one walk over the sorted set.

use std::ops::Bound;

use bytes::Bytes;

use super::{Score, ScoreBound, ZSet, range};
use crate::kv::engine::{NOT_INTEGER, SYNTAX, eq, parse_i64};
use crate::kv::reply::{Reply, format_double};

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Rank,
    Score,
    Lex,
}

/// A lexicographic bound: `[a` inclusive, `(a` exclusive, `-`, `+`.
enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    fn parse(arg: &Bytes) -> Option<LexBound> {
        match arg.first()? {
            b'-' if arg.len() == 1 => Some(LexBound::Min),
            b'+' if arg.len() == 1 => Some(LexBound::Max),
            b'[' => Some(LexBound::Inclusive(arg.slice(1..))),
            b'(' => Some(LexBound::Exclusive(arg.slice(1..))),
            _ => None,
        }
    }

    /// `member` is at or after this lower bound.
    fn below(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(b) => member >= &b[..],
            LexBound::Exclusive(b) => member > &b[..],
        }
    }

    /// `member` is at or before this upper bound.
    fn above(&self, member: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => member <= &b[..],
            LexBound::Exclusive(b) => member < &b[..],
        }
    }
}

enum Range {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

/// A parsed range query.
pub(super) struct Query {
    range: Range,
    rev: bool,
    /// LIMIT: a negative offset selects nothing, a negative count all.
    offset: i64,
    count: i64,
    with_scores: bool,
}

/// Whether `command` (upper case) is one this module answers.
pub(super) fn handles(command: &[u8]) -> bool {
    matches!(
        command,
        b"ZRANGE"
            | b"ZREVRANGE"
            | b"ZRANGEBYSCORE"
            | b"ZREVRANGEBYSCORE"
            | b"ZRANGEBYLEX"
            | b"ZREVRANGEBYLEX"
    )
}

impl Query {
    /// Parses `key min max [options…]` for `command` (upper case).
    pub(super) fn parse(command: &[u8], a: &[Bytes]) -> Result<Query, Reply> {
        // The older commands fix the kind and direction; ZRANGE takes them
        // as options (each at most once).
        let (mut by, mut rev) = match command {
            b"ZREVRANGE" => (Some(By::Rank), Some(true)),
            b"ZRANGEBYSCORE" => (Some(By::Score), Some(false)),
            b"ZREVRANGEBYSCORE" => (Some(By::Score), Some(true)),
            b"ZRANGEBYLEX" => (Some(By::Lex), Some(false)),
            b"ZREVRANGEBYLEX" => (Some(By::Lex), Some(true)),
            _ => (None, None),
        };
        let (mut with_scores, mut limit) = (false, None);
        let mut i = 3;
        while i < a.len() {
            let word = &a[i];
            if eq(word, "WITHSCORES") {
                with_scores = true;
            } else if eq(word, "LIMIT") && i + 2 < a.len() {
                let (Some(offset), Some(count)) = (parse_i64(&a[i + 1]), parse_i64(&a[i + 2]))
                else {
                    return Err(Reply::error(NOT_INTEGER));
                };
                limit = Some((offset, count));
                i += 2;
            } else if rev.is_none() && eq(word, "REV") {
                rev = Some(true);
            } else if by.is_none() && eq(word, "BYSCORE") {
                by = Some(By::Score);
            } else if by.is_none() && eq(word, "BYLEX") {
                by = Some(By::Lex);
            } else {
                return Err(Reply::error(SYNTAX));
            }
            i += 1;
        }
        let by = by.unwrap_or(By::Rank);
        let rev = rev.unwrap_or(false);
        // As in Redis, `LIMIT o -1` (count "all") is not a LIMIT.
        let (offset, count) = limit.unwrap_or((0, -1));
        if count != -1 && by == By::Rank {
            return Err(Reply::error(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && by == By::Lex {
            return Err(Reply::error(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        // Reversed score and lex ranges are given as max, min.
        let (lo, hi) = if rev && by != By::Rank {
            (&a[2], &a[1])
        } else {
            (&a[1], &a[2])
        };
        let range = match by {
            By::Rank => match (parse_i64(lo), parse_i64(hi)) {
                (Some(start), Some(stop)) => Range::Rank(start, stop),
                _ => return Err(Reply::error(NOT_INTEGER)),
            },
            By::Score => match (ScoreBound::parse(lo), ScoreBound::parse(hi)) {
                (Some(min), Some(max)) => Range::Score(min, max),
                _ => return Err(Reply::error("ERR min or max is not a float")),
            },
            By::Lex => match (LexBound::parse(lo), LexBound::parse(hi)) {
                (Some(min), Some(max)) => Range::Lex(min, max),
                _ => return Err(Reply::error("ERR min or max not valid string range item")),
            },
        };
        Ok(Query {
            range,
            rev,
            offset,
            count,
            with_scores,
        })
    }

    /// The answer for `z` (RESP3 pairs member and score).
    pub(super) fn run(&self, z: &ZSet, resp3: bool) -> Reply {
        let mut out = Vec::new();
        for (score, member) in self.select(z) {
            let member = Reply::Bulk(member.clone());
            if !self.with_scores {
                out.push(member);
            } else if resp3 {
                out.push(Reply::Array(vec![member, Reply::Double(score.0)]));
            } else {
                out.push(member);
                out.push(Reply::bulk(format_double(score.0)));
            }
        }
        Reply::Array(out)
    }

    fn select<'z>(&self, z: &'z ZSet) -> Vec<&'z (Score, Bytes)> {
        let rev = self.rev;
        let hits: Box<dyn Iterator<Item = &'z (Score, Bytes)> + '_> = match &self.range {
            Range::Rank(start, stop) => {
                let Some((s, e)) = range(*start, *stop, z.len()) else {
                    return Vec::new();
                };
                let all: Box<dyn Iterator<Item = _>> = if rev {
                    Box::new(z.ordered.iter().rev())
                } else {
                    Box::new(z.ordered.iter())
                };
                return all.skip(s).take(e - s + 1).collect();
            }
            Range::Score(min, max) if !rev => {
                // Start at the lowest entry that may match (-0 sorts
                // before 0 but equals it).
                let from = if min.value == 0.0 { -0.0 } else { min.value };
                let from = Bound::Included((Score(from), Bytes::new()));
                Box::new(
                    z.ordered
                        .range((from, Bound::Unbounded))
                        .skip_while(move |(s, _)| !min.below(s.0))
                        .take_while(move |(s, _)| max.above(s.0)),
                )
            }
            Range::Score(min, max) => {
                let to = if max.value == f64::INFINITY {
                    Bound::Unbounded
                } else {
                    Bound::Excluded((Score(max.value.next_up()), Bytes::new()))
                };
                Box::new(
                    z.ordered
                        .range((Bound::Unbounded, to))
                        .rev()
                        .skip_while(move |(s, _)| !max.above(s.0))
                        .take_while(move |(s, _)| min.below(s.0)),
                )
            }
            // Lex ranges assume equal scores (as in Redis): members are
            // then in byte order.
            Range::Lex(min, max) if !rev => Box::new(
                z.ordered
                    .iter()
                    .skip_while(move |(_, m)| !min.below(m))
                    .take_while(move |(_, m)| max.above(m)),
            ),
            Range::Lex(min, max) => Box::new(
                z.ordered
                    .iter()
                    .rev()
                    .skip_while(move |(_, m)| !max.above(m))
                    .take_while(move |(_, m)| min.below(m)),
            ),
        };
        let Ok(offset) = usize::try_from(self.offset) else {
            return Vec::new();
        };
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        hits.skip(offset).take(count).collect()
    }
}
