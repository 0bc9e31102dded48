//! Character-level text: tokenizer, train/eval split, seeded training windows and the
//! unigram baseline a language model must beat.
//!
//! Owns: [`CharTokenizer`], [`TextCorpus`], [`sample_windows`], [`eval_window`],
//! [`unigram_baseline`]. Invariants: token ids are positions in the sorted vocabulary, so
//! one text always gives one tokenizer; the windows of step `s` are a pure function of
//! `(tokens, seed, s, context, batch)`.
//!
//! # Split
//!
//! The token stream is cut once: the first `floor(len * 9 / 10)` tokens train, the rest
//! evaluate. A contiguous cut (rather than sampled windows) keeps eval text unseen in
//! training apart from its first context.
//!
//! # Training windows
//!
//! Window `b` of step `s` starts at offset `o_b`, drawn in order `b = 0..B` by
//! `CounterRng::new(derive_seed(seed, TEXT_WINDOW_DOMAIN), s).below(len - T)`; its inputs
//! are `tokens[o_b .. o_b + T]` and its targets `tokens[o_b + 1 .. o_b + T + 1]`.
//!
//! # Unigram baseline
//!
//! With `c_v` the count of token `v` in train, `N` the train length and `V` the vocabulary
//! size, `p(v) = (c_v + 1) / (N + V)` (add-one smoothing). Over the `M` eval tokens
//! `nll = -(1/M) * sum_t ln p(x_t)` in nats, summed sequentially in f64 with `libm::log`,
//! and `perplexity = libm::exp(nll)`.

use crate::rng::CounterRng;

use super::dataset::Dataset;
use super::error::{DataError, Result};
use super::format::{Record, RecordKind};
use super::order::derive_seed;

/// Domain of the key that places training windows.
pub const TEXT_WINDOW_DOMAIN: &str = "poi/data/text-windows/v1";
/// Largest vocabulary a [`CharTokenizer`] may have.
pub const VOCAB_MAX: u32 = 1 << 16;
/// Numerator of the train fraction of a [`TextCorpus`].
pub const TRAIN_NUMERATOR: u64 = 9;
/// Denominator of the train fraction of a [`TextCorpus`].
pub const TRAIN_DENOMINATOR: u64 = 10;

/// Maps characters to token ids: id `i` is the `i`-th smallest character of the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharTokenizer {
    /// Strictly increasing.
    vocab: Vec<char>,
}

impl CharTokenizer {
    /// The tokenizer whose vocabulary is every character occurring in `text`.
    pub fn from_text(text: &str) -> Result<Self> {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        Self::from_vocab(vocab)
    }

    /// A tokenizer with this vocabulary, which must be non-empty and strictly increasing.
    pub fn from_vocab(vocab: Vec<char>) -> Result<Self> {
        if vocab.is_empty() || !vocab.windows(2).all(|w| w[0] < w[1]) {
            let reason = "must be non-empty and strictly increasing".to_owned();
            return Err(DataError::InvalidArgument {
                what: "vocabulary",
                reason,
            });
        }
        if vocab.len() > VOCAB_MAX as usize {
            let value = vocab.len() as u64;
            return Err(DataError::Limit {
                what: "vocabulary",
                value,
                max: VOCAB_MAX.into(),
            });
        }
        Ok(Self { vocab })
    }

    /// The characters, in id order.
    pub fn vocab(&self) -> &[char] {
        &self.vocab
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> u32 {
        self.vocab.len() as u32
    }

    /// The id of `ch`, if it is in the vocabulary.
    pub fn token(&self, ch: char) -> Option<u32> {
        self.vocab.binary_search(&ch).ok().map(|i| i as u32)
    }

    /// Token ids of `text`; a character outside the vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.char_indices()
            .map(|(offset, ch)| {
                self.token(ch).ok_or(DataError::UnknownChar {
                    ch,
                    offset: offset as u64,
                })
            })
            .collect()
    }

    /// The text of `tokens`; an id outside the vocabulary is an error.
    pub fn decode(&self, tokens: &[u32]) -> Result<String> {
        tokens
            .iter()
            .map(|&token| {
                self.vocab
                    .get(token as usize)
                    .copied()
                    .ok_or(DataError::UnknownToken {
                        token,
                        vocab_size: self.vocab_size(),
                    })
            })
            .collect()
    }
}

/// A tokenized text split into train and eval streams.
#[derive(Clone, Debug, PartialEq)]
pub struct TextCorpus {
    /// Corpus name.
    pub name: String,
    /// The tokenizer built from the whole text.
    pub tokenizer: CharTokenizer,
    /// The first 90% of the tokens.
    pub train: Vec<u32>,
    /// The remaining tokens.
    pub eval: Vec<u32>,
}

impl TextCorpus {
    /// Tokenizes `text` with its own vocabulary and splits it (see the module docs).
    pub fn from_text(name: &str, text: &str) -> Result<Self> {
        let tokenizer = CharTokenizer::from_text(text)?;
        let mut train = tokenizer.encode(text)?;
        let cut = train.len() as u64 * TRAIN_NUMERATOR / TRAIN_DENOMINATOR;
        let eval = train.split_off(cut as usize);
        for (stream, what) in [(&train, "train split"), (&eval, "eval split")] {
            if stream.is_empty() {
                return Err(DataError::Empty {
                    name: name.to_owned(),
                    what,
                });
            }
        }
        Ok(Self {
            name: name.to_owned(),
            tokenizer,
            train,
            eval,
        })
    }

    /// The concatenation of a text dataset's records, in dataset order, as a corpus.
    pub fn from_dataset(dataset: &Dataset) -> Result<Self> {
        let kind = dataset.schema().kind;
        if kind != RecordKind::Text {
            return Err(DataError::KindMismatch {
                name: dataset.name().to_owned(),
                expected: RecordKind::Text.name(),
                found: kind.name(),
            });
        }
        let mut text = String::new();
        for record in dataset.records() {
            if let Record::Text(part) = record {
                text.push_str(part);
            }
        }
        Self::from_text(dataset.name(), &text)
    }
}

fn check_windows(tokens: &[u32], context: u32, inputs: &[u32], targets: &[u32]) -> Result<u64> {
    if context == 0 || !inputs.len().is_multiple_of(context as usize) {
        let reason = format!(
            "inputs of {} do not hold whole windows of {context}",
            inputs.len()
        );
        return Err(DataError::InvalidArgument {
            what: "context",
            reason,
        });
    }
    if targets.len() != inputs.len() {
        let (expected, actual) = (inputs.len() as u64, targets.len() as u64);
        return Err(DataError::BufferSize {
            what: "targets",
            expected,
            actual,
        });
    }
    let need = u64::from(context) + 1;
    if (tokens.len() as u64) < need {
        let have = tokens.len() as u64;
        return Err(DataError::TooFewTokens {
            have,
            need,
            context,
        });
    }
    Ok(inputs.len() as u64 / u64::from(context))
}

fn copy_window(tokens: &[u32], offset: usize, inputs: &mut [u32], targets: &mut [u32]) {
    let t = inputs.len();
    inputs.copy_from_slice(&tokens[offset..offset + t]);
    targets.copy_from_slice(&tokens[offset + 1..offset + t + 1]);
}

/// Fills `inputs` and `targets` (each `batch * context`, row-major) with the training
/// windows of step `step` (see the module docs); the batch size is `inputs.len() / context`.
pub fn sample_windows(
    tokens: &[u32],
    seed: u64,
    step: u64,
    context: u32,
    inputs: &mut [u32],
    targets: &mut [u32],
) -> Result<()> {
    check_windows(tokens, context, inputs, targets)?;
    let span = tokens.len() as u64 - u64::from(context);
    let mut rng = CounterRng::new(derive_seed(seed, TEXT_WINDOW_DOMAIN), step);
    let t = context as usize;
    for (x, y) in inputs.chunks_exact_mut(t).zip(targets.chunks_exact_mut(t)) {
        copy_window(tokens, rng.below(span) as usize, x, y);
    }
    Ok(())
}

/// Number of non-overlapping evaluation windows of `context` in `n_tokens` tokens.
pub fn eval_window_count(n_tokens: u64, context: u32) -> u64 {
    match context {
        0 => 0,
        t => n_tokens.saturating_sub(1) / u64::from(t),
    }
}

/// Fills `inputs` and `targets` (each `context`) with evaluation window `index`: inputs
/// `tokens[index * T .. (index + 1) * T]`, targets shifted by one. Windows tile the stream,
/// so evaluating every window scores each token (after the first) exactly once.
pub fn eval_window(
    tokens: &[u32],
    index: u64,
    inputs: &mut [u32],
    targets: &mut [u32],
) -> Result<()> {
    let context = inputs.len() as u32;
    check_windows(tokens, context, inputs, targets)?;
    let count = eval_window_count(tokens.len() as u64, context);
    if index >= count {
        let reason = format!("window {index} of {count}");
        return Err(DataError::InvalidArgument {
            what: "eval window",
            reason,
        });
    }
    copy_window(
        tokens,
        (index * u64::from(context)) as usize,
        inputs,
        targets,
    );
    Ok(())
}

/// How well the add-one-smoothed unigram model predicts the eval stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnigramBaseline {
    /// Mean negative log-likelihood per eval token, in nats.
    pub nll_nats: f64,
    /// `exp(nll_nats)`.
    pub perplexity: f64,
    /// Number of eval tokens scored.
    pub eval_tokens: u64,
}

/// The unigram baseline of the module docs: counts from `train`, scored on `eval`.
pub fn unigram_baseline(train: &[u32], eval: &[u32], vocab_size: u32) -> Result<UnigramBaseline> {
    if vocab_size == 0 || eval.is_empty() {
        let reason = format!("vocabulary {vocab_size}, {} eval tokens", eval.len());
        return Err(DataError::InvalidArgument {
            what: "unigram baseline",
            reason,
        });
    }
    let mut counts = vec![0u64; vocab_size as usize];
    for &token in train.iter().chain(eval) {
        if token >= vocab_size {
            return Err(DataError::UnknownToken { token, vocab_size });
        }
    }
    for &token in train {
        counts[token as usize] += 1;
    }
    let total = train.len() as f64 + f64::from(vocab_size);
    let mut sum = 0.0f64;
    for &token in eval {
        sum += libm::log((counts[token as usize] as f64 + 1.0) / total);
    }
    let nll_nats = -sum / eval.len() as f64;
    Ok(UnigramBaseline {
        nll_nats,
        perplexity: libm::exp(nll_nats),
        eval_tokens: eval.len() as u64,
    })
}
