//! Decoding a YOLO head's raw output (ultralytics v5, v8, v11 exports) into
//! scored, class-aware suppressed boxes.
//!
//! The output of one image is a matrix of `anchors` candidates by
//! `4 + classes` values (`5 + classes` with an objectness column, v5 style):
//! `cx, cy, w, h`, then `[objectness,]` one score per class. Exports store it
//! either way round, `[4 + C, N]` (v8, v11: [`Layout::ChannelsFirst`]) or
//! `[N, 4 + C]` (v5: [`Layout::AnchorsFirst`]). Each candidate takes its best
//! class (the lowest class on ties, as `argmax`), scored by that class's
//! score, times the objectness when there is one.

use crate::error::Error;
use crate::postprocess::nms::{suppress, Candidate};

/// How the matrix of one image is laid out in memory (row-major).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[values, anchors]`: each value's row holds every anchor (v8, v11).
    ChannelsFirst,
    /// `[anchors, values]`: each anchor's row holds its values (v5).
    AnchorsFirst,
}

/// What the head's matrix holds and how to read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    /// Memory layout.
    pub layout: Layout,
    /// Candidates.
    pub anchors: usize,
    /// Classes (score columns).
    pub classes: usize,
    /// A column of objectness before the class scores.
    pub objectness: bool,
    /// Boxes in `0..1` of the input, scaled by `input_size`; else input pixels.
    pub normalized: bool,
    /// The model input's `(width, height)` in pixels.
    pub input_size: (f32, f32),
}

/// What to keep: scores at or above `min_score`, overlap threshold, how many.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// Lowest score kept (inclusive).
    pub min_score: f32,
    /// Same-class boxes overlapping more than this are suppressed.
    pub iou_threshold: f32,
    /// At most this many boxes.
    pub max_results: usize,
}

/// One kept box: corners `x0, y0, x1, y1` in input pixels, score, class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Found {
    /// `[x0, y0, x1, y1]` in model-input pixels.
    pub corners: [f32; 4],
    /// The class's score (times objectness).
    pub score: f32,
    /// The class index, 0-based.
    pub class: u32,
}

impl Head {
    /// Values per candidate: 4 box values, objectness, class scores.
    #[must_use]
    pub fn values(&self) -> usize {
        4 + usize::from(self.objectness) + self.classes
    }

    /// The value `v` of candidate `a`.
    #[inline]
    fn at(&self, data: &[f32], a: usize, v: usize) -> f32 {
        match self.layout {
            Layout::ChannelsFirst => data[v * self.anchors + a],
            Layout::AnchorsFirst => data[a * self.values() + v],
        }
    }
}

/// Decodes one image's head output and suppresses overlapping boxes.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `data` does not hold `anchors x values`
/// floats or the head has no class.
pub fn decode(data: &[f32], head: &Head, selection: &Selection) -> Result<Vec<Found>, Error> {
    let values = head.values();
    if head.classes == 0 || data.len() != head.anchors * values {
        return Err(Error::InvalidArgument(format!(
            "a YOLO head of {} anchors x {values} values needs {} floats, got {}",
            head.anchors,
            head.anchors * values,
            data.len()
        )));
    }
    let best = best_scores(data, head);
    let first_class = 4 + usize::from(head.objectness);
    let (sx, sy) = if head.normalized {
        head.input_size
    } else {
        (1.0, 1.0)
    };
    let mut candidates = Vec::new();
    for (a, &best) in best.iter().enumerate() {
        let score = if head.objectness {
            best * head.at(data, a, first_class - 1)
        } else {
            best
        };
        // A NaN score compares false: never a candidate.
        if score >= selection.min_score {
            let (cx, cy) = (head.at(data, a, 0) * sx, head.at(data, a, 1) * sy);
            let (hw, hh) = (
                head.at(data, a, 2) * sx / 2.0,
                head.at(data, a, 3) * sy / 2.0,
            );
            // The first class holding the best score, as argmax: looked up
            // only for the few candidates, not for every anchor.
            #[allow(clippy::float_cmp)] // exact: `best` is one of these values, copied
            let class = (0..head.classes)
                .position(|c| head.at(data, a, first_class + c) == best)
                .unwrap_or(0);
            candidates.push(Candidate {
                corners: [cx - hw, cy - hh, cx + hw, cy + hh],
                score,
                class: i64::try_from(class).unwrap_or(i64::MAX),
            });
        }
    }
    let kept = suppress(&candidates, selection.iou_threshold, selection.max_results);
    Ok(kept
        .into_iter()
        .map(|i| Found {
            corners: candidates[i].corners,
            score: candidates[i].score,
            class: cls_of(&candidates[i]),
        })
        .collect())
}

/// The class index back from a candidate made by [`decode`] (always a `u32`).
fn cls_of(candidate: &Candidate) -> u32 {
    u32::try_from(candidate.class).unwrap_or(u32::MAX)
}

/// Anchors per block of the channels-first scan: 4 KiB of running best.
const ANCHOR_BLOCK: usize = 1024;

/// Per anchor, its best class score (`-inf` if every score is NaN).
///
/// `if v > b { v } else { b }` is exactly x86's `maxps` (a NaN `v` leaves
/// `b`), so the channels-first scan compiles to packed maxima; which class
/// won is found afterwards, only for the anchors that pass the threshold.
fn best_scores(data: &[f32], head: &Head) -> Vec<f32> {
    let first = 4 + usize::from(head.objectness);
    let n = head.anchors;
    let mut best = vec![f32::NEG_INFINITY; n];
    match head.layout {
        Layout::ChannelsFirst => {
            // One contiguous row per class, walked a block of anchors at a
            // time so the running best stays in L1.
            for start in (0..n).step_by(ANCHOR_BLOCK) {
                let end = (start + ANCHOR_BLOCK).min(n);
                let best = &mut best[start..end];
                for row in data.chunks_exact(n).skip(first) {
                    for (b, &v) in best.iter_mut().zip(&row[start..end]) {
                        *b = if v > *b { v } else { *b };
                    }
                }
            }
        }
        Layout::AnchorsFirst => {
            for (row, b) in data.chunks_exact(head.values()).zip(best.iter_mut()) {
                *b = row[first..]
                    .iter()
                    .fold(f32::NEG_INFINITY, |b, &v| if v > b { v } else { b });
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELECT: Selection = Selection {
        min_score: 0.25,
        iou_threshold: 0.45,
        max_results: 100,
    };

    /// Candidates as rows `[cx, cy, w, h, (obj,) scores...]`, laid out as `layout`.
    fn matrix(rows: &[Vec<f32>], layout: Layout) -> Vec<f32> {
        match layout {
            Layout::AnchorsFirst => rows.concat(),
            Layout::ChannelsFirst => (0..rows[0].len())
                .flat_map(|v| rows.iter().map(move |row| row[v]))
                .collect(),
        }
    }

    fn head(layout: Layout, anchors: usize, classes: usize, objectness: bool) -> Head {
        Head {
            layout,
            anchors,
            classes,
            objectness,
            normalized: false,
            input_size: (640.0, 640.0),
        }
    }

    #[test]
    fn both_layouts_decode_the_same_boxes() {
        let rows = vec![
            vec![100.0, 100.0, 40.0, 20.0, 0.1, 0.9],
            vec![102.0, 101.0, 40.0, 20.0, 0.2, 0.8], // duplicate of the first
            vec![300.0, 200.0, 10.0, 10.0, 0.7, 0.3],
            vec![500.0, 500.0, 10.0, 10.0, 0.1, 0.2], // below min_score
        ];
        for layout in [Layout::ChannelsFirst, Layout::AnchorsFirst] {
            let found =
                decode(&matrix(&rows, layout), &head(layout, 4, 2, false), &SELECT).unwrap();
            assert_eq!(
                found,
                vec![
                    Found {
                        corners: [80.0, 90.0, 120.0, 110.0],
                        score: 0.9,
                        class: 1
                    },
                    Found {
                        corners: [295.0, 195.0, 305.0, 205.0],
                        score: 0.7,
                        class: 0
                    },
                ]
            );
        }
    }

    #[test]
    fn ties_go_to_the_first_class_and_nan_scores_are_skipped() {
        let rows = vec![
            vec![100.0, 100.0, 10.0, 10.0, 0.5, 0.75, 0.75], // tie: class 1, as argmax
            vec![300.0, 300.0, 10.0, 10.0, f32::NAN, 0.5, 0.25], // NaN ignored: class 1
            vec![500.0, 500.0, 10.0, 10.0, f32::NAN, f32::NAN, f32::NAN], // no score at all
        ];
        for layout in [Layout::ChannelsFirst, Layout::AnchorsFirst] {
            let found =
                decode(&matrix(&rows, layout), &head(layout, 3, 3, false), &SELECT).unwrap();
            let got: Vec<(u32, f32)> = found.iter().map(|f| (f.class, f.score)).collect();
            assert_eq!(got, vec![(1, 0.75), (1, 0.5)], "{layout:?}");
        }
    }

    #[test]
    #[allow(
        clippy::float_cmp,
        reason = "exact: sums and halves of small binary fractions"
    )]
    fn objectness_multiplies_and_normalized_boxes_scale() {
        let rows = vec![
            vec![0.5, 0.25, 0.1, 0.1, 0.5, 0.9, 0.1], // 0.45
            vec![0.1, 0.1, 0.1, 0.1, 0.2, 0.9, 0.9],  // 0.18: dropped
        ];
        let mut h = head(Layout::AnchorsFirst, 2, 2, true);
        h.normalized = true;
        h.input_size = (200.0, 100.0);
        let found = decode(&matrix(&rows, Layout::AnchorsFirst), &h, &SELECT).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].class, 0);
        assert!((found[0].score - 0.45).abs() < 1e-6);
        assert_eq!(found[0].corners, [90.0, 20.0, 110.0, 30.0]);
    }

    #[test]
    fn a_wrongly_sized_buffer_is_an_argument_error() {
        let result = decode(
            &[0.0; 10],
            &head(Layout::ChannelsFirst, 2, 2, false),
            &SELECT,
        );
        assert!(matches!(result, Err(Error::InvalidArgument(_))));
        let no_class = decode(
            &[0.0; 8],
            &head(Layout::ChannelsFirst, 2, 0, false),
            &SELECT,
        );
        assert!(matches!(no_class, Err(Error::InvalidArgument(_))));
    }
}
