//! Intent and suggestion quality on labeled data: the numbers `huashu eval` reports.
//!
//! Input is TSV with a header and the columns `id`, `text`, `intents` (comma-separated,
//! primary first), the format of the team's labeled sets. Metrics: primary-intent accuracy;
//! macro-F1 over the answerable intents (all but `unknown`) that occur in the gold labels;
//! per-intent precision/recall/F1; the most frequent confusions; abstention (share of
//! `unknown` rows abstained on, share of answerable rows wrongly abstained on); top-3 hit
//! rate (one of the first three suggestions belongs to one of the row's labels); engine
//! latency percentiles. Two optional columns judge the replies themselves: `order_state`
//! (the state the front end would report for the row) and `replies` (comma-separated ids of
//! every phrase that would be a good reply); rows with `replies` give the reply hit rates
//! (the first suggestion, or one of the first three, is one of them). No I/O: the caller
//! reads the files.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::conversation::ContextUpdate;
use crate::engine::{At, Engine};
use crate::phrasebook::{OrderState, UNKNOWN_INTENT};
use crate::{Error, Result};

/// One labeled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labeled {
    pub id: String,
    pub text: String,
    /// Primary first.
    pub intents: Vec<String>,
    /// The order state to suggest in (the `order_state` column), if given.
    pub order_state: Option<OrderState>,
    /// Ids of the phrases that are a good reply (the `replies` column); empty when not judged.
    pub replies: Vec<String>,
}

/// Reads labeled TSV. `label` names the source in errors.
pub fn read_labeled(src: &str, label: &str) -> Result<Vec<Labeled>> {
    let mut lines = src.lines().enumerate();
    let header = lines.next().map(|(_, h)| h).unwrap_or_default();
    let cols: Vec<&str> = header.split('\t').map(str::trim).collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::Invalid {
                field: "labeled file",
                message: format!(
                    "{label}:1: header lacks column `{name}` (found: {})",
                    cols.join(", ")
                ),
            })
    };
    let (ci, ct, cl) = (col("id")?, col("text")?, col("intents")?);
    let optional = |name: &str| cols.iter().position(|c| *c == name);
    let (cs, cr) = (optional("order_state"), optional("replies"));
    let mut rows = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| {
            fields
                .get(i)
                .map(|s| s.trim())
                .ok_or_else(|| Error::Invalid {
                    field: "labeled file",
                    message: format!(
                        "{label}:{}: expected {} columns, found {}",
                        n + 1,
                        cols.len(),
                        fields.len()
                    ),
                })
        };
        let intents: Vec<String> = get(cl)?
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if intents.is_empty() {
            return Err(Error::Invalid {
                field: "labeled file",
                message: format!("{label}:{}: no intent label", n + 1),
            });
        }
        let order_state = match cs.map(get).transpose()?.filter(|s| !s.is_empty()) {
            Some(s) => Some(OrderState::parse(s).ok_or_else(|| Error::Invalid {
                field: "labeled file",
                message: format!(
                    "{label}:{}: order_state `{s}` is not one of {}",
                    n + 1,
                    OrderState::names()
                ),
            })?),
            None => None,
        };
        let replies: Vec<String> = match cr {
            Some(c) => get(c)?
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => Vec::new(),
        };
        rows.push(Labeled {
            id: get(ci)?.to_string(),
            text: get(ct)?.to_string(),
            intents,
            order_state,
            replies,
        });
    }
    Ok(rows)
}

/// Precision/recall/F1 of one intent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentScore {
    pub intent: String,
    /// Rows whose primary label is this intent.
    pub support: usize,
    /// Rows predicted as this intent.
    pub predicted: usize,
    pub correct: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// What `evaluate` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub rows: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_intent: Vec<IntentScore>,
    /// (gold, predicted, count), most frequent first.
    pub confusions: Vec<(String, String, usize)>,
    /// Share of `unknown` rows the engine abstained on.
    pub unknown_abstained: f64,
    /// Share of answerable rows the engine abstained on.
    pub wrongly_abstained: f64,
    pub top3: f64,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// How well the first suggestion's `confidence` predicts that its intent is right.
    pub calibration: Calibration,
    /// Rows whose primary intent was missed, in input order: what to look at when adding
    /// examples.
    pub misses: Vec<Miss>,
    /// How often the suggested replies were good ones, over the rows that list `replies`.
    pub replies: Option<ReplyScore>,
}

/// Reply hit rates over the rows whose good replies are labeled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplyScore {
    pub rows: usize,
    /// Share of rows whose first suggestion is a good reply.
    pub hit1: f64,
    /// Share of rows with a good reply among the first three.
    pub hit3: f64,
    /// Rows with no good reply in the first three, in input order.
    pub misses: Vec<usize>,
}

/// One row whose primary intent the engine got wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// Index into the scored rows.
    pub row: usize,
    pub predicted: String,
}

/// Reliability of a confidence: rows binned by confidence (tenths), each bin's mean
/// confidence against how often the first suggestion's intent was one of the row's labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calibration {
    /// Expected calibration error: the row-weighted mean |confidence − hit rate| of the bins.
    pub ece: f64,
    /// (bin low edge, rows, mean confidence, hit rate) for the bins with rows.
    pub bins: Vec<(f64, usize, f64, f64)>,
}

/// Calibration of `(confidence, hit)` pairs over ten equal-width bins.
pub fn calibration(pairs: &[(f32, bool)]) -> Calibration {
    let mut sums = [(0usize, 0.0f64, 0usize); 10];
    for &(c, hit) in pairs {
        let b = ((c.clamp(0.0, 1.0) * 10.0) as usize).min(9);
        sums[b].0 += 1;
        sums[b].1 += f64::from(c);
        sums[b].2 += usize::from(hit);
    }
    let total = pairs.len().max(1) as f64;
    let mut out = Calibration::default();
    for (b, &(n, conf, hits)) in sums.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let (mean, rate) = (conf / n as f64, hits as f64 / n as f64);
        out.ece += n as f64 / total * (mean - rate).abs();
        out.bins.push((b as f64 / 10.0, n, mean, rate));
    }
    out
}

/// Whole conversations, for replaying the turns before a labeled message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sessions {
    /// Per session: (row, speaker is the buyer, text), in row order.
    turns: HashMap<String, Vec<(u64, bool, String)>>,
}

/// Reads a sessions TSV with a header and the columns `session`, `row`, `speaker`
/// (`buyer`/`agent`), `text`.
pub fn read_sessions(src: &str, label: &str) -> Result<Sessions> {
    let mut lines = src.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, h)| h.split('\t').map(str::trim).collect())
        .unwrap_or_default();
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| Error::Invalid {
                field: "sessions file",
                message: format!("{label}:1: header lacks column `{name}`"),
            })
    };
    let (cs, cr, cp, ct) = (col("session")?, col("row")?, col("speaker")?, col("text")?);
    let mut out = Sessions::default();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| {
            f.get(i).copied().ok_or_else(|| Error::Invalid {
                field: "sessions file",
                message: format!("{label}:{}: expected {} columns", n + 1, header.len()),
            })
        };
        let row: u64 = get(cr)?.trim().parse().map_err(|_| Error::Invalid {
            field: "sessions file",
            message: format!("{label}:{}: row is not a number", n + 1),
        })?;
        out.turns
            .entry(get(cs)?.trim().to_string())
            .or_default()
            .push((row, get(cp)?.trim() == "buyer", get(ct)?.to_string()));
    }
    for turns in out.turns.values_mut() {
        turns.sort_by_key(|t| t.0);
    }
    Ok(out)
}

/// Runs every row through the engine and scores it. With `context`, each row whose id is
/// `<corpus>:<session>:<row>` first has its session's earlier turns replayed through a fresh
/// conversation (buyer turns as messages, agent turns as agent messages), so it is judged as
/// it would be live.
pub fn evaluate(
    engine: &Engine,
    shop: &str,
    rows: &[Labeled],
    context: Option<&Sessions>,
) -> Result<Report> {
    let mut predictions = Vec::with_capacity(rows.len());
    let mut latencies = Vec::with_capacity(rows.len());
    let mut confidences = Vec::with_capacity(rows.len());
    // Rows with good replies listed, how many had one first and in the top 3, and the rows
    // with none in the top 3.
    let (mut reply_rows, mut hits1, mut hits3) = (0usize, 0usize, 0usize);
    let mut reply_misses = Vec::new();
    // A listed reply that is not in the shop could never be hit: say so instead.
    let served = engine.shop_ref(shop)?;
    let known: std::collections::HashSet<&str> = served.phrases().map(|p| p.id.as_str()).collect();
    for row in rows {
        if let Some(id) = row.replies.iter().find(|id| !known.contains(id.as_str())) {
            return Err(Error::Invalid {
                field: "labeled file",
                message: format!("{}: reply `{id}` is not a phrase of shop `{shop}`", row.id),
            });
        }
    }
    let now = At::now();
    for (i, row) in rows.iter().enumerate() {
        let conversation = format!("eval-{i}");
        let mut conv = None;
        // The session file has no timestamps: turns are replayed `TURN_GAP` apart on the
        // conversation's clock, so no two count as rapid-fire fragments of one message.
        let mut clock = Some(now.mono);
        if let Some(sessions) = context {
            let mut parts = row.id.rsplitn(3, ':');
            let (at, session) = (
                parts.next().and_then(|r| r.parse::<u64>().ok()),
                parts.next(),
            );
            if let (Some(at), Some(turns)) = (at, session.and_then(|s| sessions.turns.get(s))) {
                for (_, buyer, text) in turns.iter().filter(|t| t.0 < at) {
                    clock = clock.map(|c| c + TURN_GAP);
                    let when = At {
                        unix: now.unix,
                        mono: clock.unwrap_or(now.mono),
                    };
                    if *buyer {
                        engine.suggest_at(shop, Some(&conversation), text, when)?;
                    } else {
                        engine.agent_message_at(shop, &conversation, text, None, when.mono)?;
                    }
                }
            }
            conv = Some(conversation.as_str());
        }
        if let Some(state) = row.order_state {
            engine.context(shop, &conversation, ContextUpdate::of_order_state(state))?;
            conv = Some(conversation.as_str());
        }
        let when = At {
            unix: now.unix,
            mono: clock.map_or(now.mono, |c| c + TURN_GAP),
        };
        let s = engine.suggest_at(shop, conv, &row.text, when)?;
        latencies.push(s.elapsed);
        let primary = s
            .intents
            .first()
            .map_or(UNKNOWN_INTENT.to_string(), |i| i.intent.clone());
        let top3: Vec<String> = s.items.iter().take(3).map(|i| i.intent.clone()).collect();
        if let Some(first) = s.items.first() {
            confidences.push((first.confidence, row.intents.contains(&first.intent)));
        }
        predictions.push((primary, top3));
        if !row.replies.is_empty() {
            let good = |n: usize| {
                s.items
                    .iter()
                    .take(n)
                    .any(|i| row.replies.contains(&i.phrase_id))
            };
            reply_rows += 1;
            hits1 += usize::from(good(1));
            hits3 += usize::from(good(3));
            if !good(3) {
                reply_misses.push(i);
            }
        }
    }
    let mut report = score(rows, &predictions, latencies);
    report.calibration = calibration(&confidences);
    report.replies = (reply_rows > 0).then(|| ReplyScore {
        rows: reply_rows,
        hit1: hits1 as f64 / reply_rows as f64,
        hit3: hits3 as f64 / reply_rows as f64,
        misses: reply_misses,
    });
    Ok(report)
}

/// Spacing of replayed turns: more than the rapid-fire window, well inside the time an
/// agent's question stays open.
const TURN_GAP: Duration = Duration::from_secs(30);

/// Scores predictions `(primary intent, intents of the top suggestions)` against rows.
pub fn score(
    rows: &[Labeled],
    predictions: &[(String, Vec<String>)],
    mut latencies: Vec<Duration>,
) -> Report {
    let mut support: HashMap<&str, usize> = HashMap::new();
    let mut predicted: HashMap<&str, usize> = HashMap::new();
    let mut correct: HashMap<&str, usize> = HashMap::new();
    let mut confusions: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let (mut ok, mut unknown_rows, mut unknown_ab, mut answerable, mut wrong_ab, mut top3) =
        (0, 0, 0, 0, 0, 0);
    for (i, (row, (pred, items))) in rows.iter().zip(predictions).enumerate() {
        let gold = row.intents[0].as_str();
        *support.entry(gold).or_default() += 1;
        *predicted.entry(pred.as_str()).or_default() += 1;
        if gold == pred {
            ok += 1;
            *correct.entry(gold).or_default() += 1;
        } else {
            *confusions
                .entry((gold.to_string(), pred.clone()))
                .or_default() += 1;
            misses.push(Miss {
                row: i,
                predicted: pred.clone(),
            });
        }
        if gold == UNKNOWN_INTENT {
            unknown_rows += 1;
            unknown_ab += usize::from(pred == UNKNOWN_INTENT);
        } else {
            answerable += 1;
            wrong_ab += usize::from(pred == UNKNOWN_INTENT);
            top3 += usize::from(items.iter().any(|i| row.intents.contains(i)));
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut names: Vec<&str> = support.keys().chain(predicted.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let per_intent: Vec<IntentScore> = names
        .iter()
        .map(|&n| {
            let (s, p, c) = (
                support.get(n).copied().unwrap_or(0),
                predicted.get(n).copied().unwrap_or(0),
                correct.get(n).copied().unwrap_or(0),
            );
            let (precision, recall) = (ratio(c, p), ratio(c, s));
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            IntentScore {
                intent: n.to_string(),
                support: s,
                predicted: p,
                correct: c,
                precision,
                recall,
                f1,
            }
        })
        .collect();
    let answerable_scores: Vec<f64> = per_intent
        .iter()
        .filter(|s| s.intent != UNKNOWN_INTENT && s.support > 0)
        .map(|s| s.f1)
        .collect();
    let macro_f1 = answerable_scores.iter().sum::<f64>() / answerable_scores.len().max(1) as f64;
    let mut confusions: Vec<(String, String, usize)> = confusions
        .into_iter()
        .map(|((g, p), n)| (g, p, n))
        .collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Report {
        rows: rows.len(),
        accuracy: ratio(ok, rows.len()),
        macro_f1,
        per_intent,
        confusions,
        unknown_abstained: ratio(unknown_ab, unknown_rows),
        wrongly_abstained: ratio(wrong_ab, answerable),
        top3: ratio(top3, answerable),
        latency_p50: pct(0.5),
        latency_p99: pct(0.99),
        calibration: Calibration::default(),
        misses,
        replies: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(text: &str, intents: &str) -> Labeled {
        Labeled {
            id: text.into(),
            text: text.into(),
            intents: intents.split(',').map(str::to_string).collect(),
            order_state: None,
            replies: Vec::new(),
        }
    }

    fn p(primary: &str, top: &[&str]) -> (String, Vec<String>) {
        (primary.into(), top.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn reads_tsv_and_names_bad_lines() {
        let rows = read_labeled(
            "id\ttext\tintents\na\t在吗\tgreeting\nb\t在吗 到哪了\tlogistics,greeting\n\n",
            "x.tsv",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].intents, ["logistics", "greeting"]);
        let e = read_labeled("id\ttext\n", "x.tsv").unwrap_err().to_string();
        assert!(e.contains("x.tsv:1") && e.contains("intents"), "{e}");
        let e = read_labeled("id\ttext\tintents\na\tb\n", "x.tsv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.tsv:2"), "{e}");
        let e = read_labeled("id\ttext\tintents\na\tb\t\n", "x.tsv")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no intent"), "{e}");
    }

    #[test]
    fn reads_the_optional_state_and_replies_columns() {
        let rows = read_labeled(
            "id\ttext\tintents\torder_state\treplies\n\
             a\t到哪了\tlogistics\tshipped\tl-1, l-2\n\
             b\t在吗\tgreeting\t\t\n",
            "r.tsv",
        )
        .unwrap();
        assert_eq!(rows[0].order_state, Some(OrderState::Shipped));
        assert_eq!(rows[0].replies, ["l-1", "l-2"]);
        assert_eq!((rows[1].order_state, rows[1].replies.len()), (None, 0));
        let e = read_labeled(
            "id\ttext\tintents\torder_state\na\t到哪了\tlogistics\tsent\n",
            "r.tsv",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("r.tsv:2") && e.contains("`sent`") && e.contains("refunding"),
            "{e}"
        );
    }

    #[test]
    fn reads_sessions_in_row_order() {
        let s = read_sessions("session\trow\tspeaker\ttext\na\t2\tagent\t您好\na\t1\tbuyer\t在吗\nb\t1\tbuyer\t到哪了\n", "s.tsv").unwrap();
        assert_eq!(
            s.turns["a"],
            [
                (1, true, "在吗".to_string()),
                (2, false, "您好".to_string())
            ]
        );
        assert!(
            read_sessions("session\trow\ttext\n", "s.tsv")
                .unwrap_err()
                .to_string()
                .contains("speaker")
        );
        assert!(read_sessions("session\trow\tspeaker\ttext\na\tx\tbuyer\tt\n", "s.tsv").is_err());
    }

    #[test]
    fn calibration_compares_confidence_with_hit_rate() {
        let cases: &[(&[(f32, bool)], f64)] = &[
            // Perfectly calibrated: 0.25 confidence, 1 hit in 4.
            (
                &[(0.25, true), (0.25, false), (0.25, false), (0.25, false)],
                0.0,
            ),
            // Over-confident: 0.95 but never right.
            (&[(0.95, false), (0.95, false)], 0.95),
            // Two bins, each off by 0.1, equal weight.
            (&[(0.9, true), (0.1, true)], 0.5),
        ];
        for (pairs, want) in cases {
            let c = calibration(pairs);
            assert!((c.ece - want).abs() < 1e-6, "{pairs:?}: {}", c.ece);
        }
        let c = calibration(&[(1.0, true), (0.0, false)]);
        assert_eq!(c.bins.len(), 2, "1.0 falls in the top bin");
        assert_eq!(calibration(&[]), Calibration::default());
    }

    #[test]
    fn scores_a_known_table() {
        let rows = vec![
            row("a", "greeting"),
            row("b", "logistics,greeting"),
            row("c", "logistics"),
            row("d", "unknown"),
            row("e", "unknown"),
        ];
        let preds = vec![
            p("greeting", &["greeting"]),
            p("logistics", &["logistics"]),
            p("unknown", &["unknown"]),
            p("unknown", &[]),
            p("greeting", &["greeting"]),
        ];
        let r = score(&rows, &preds, vec![Duration::from_micros(10); 5]);
        assert_eq!(r.rows, 5);
        assert!((r.accuracy - 0.6).abs() < 1e-9);
        assert!((r.unknown_abstained - 0.5).abs() < 1e-9);
        assert!((r.wrongly_abstained - 1.0 / 3.0).abs() < 1e-9);
        assert!((r.top3 - 2.0 / 3.0).abs() < 1e-9);
        // greeting: p = 1/2, r = 1 → f1 2/3; logistics: p = 1, r = 1/2 → 2/3.
        assert!((r.macro_f1 - 2.0 / 3.0).abs() < 1e-9, "{}", r.macro_f1);
        assert_eq!(r.confusions[0].2, 1);
        let missed: Vec<(usize, &str)> = r
            .misses
            .iter()
            .map(|m| (m.row, m.predicted.as_str()))
            .collect();
        assert_eq!(missed, [(2, "unknown"), (4, "greeting")]);
        assert_eq!(r.latency_p50, Duration::from_micros(10));
    }
}
