//! Greedy, class-aware non-maximum suppression, bit-for-bit as
//! `tf.image.non_max_suppression` decides.
//!
//! Candidates are visited by score, highest first (equal scores: the lower
//! index first, as TensorFlow's priority queue and OpenCV's stable sort do);
//! a candidate is kept unless its overlap (intersection over union) with a kept box *of the same class* is
//! greater than the threshold. The overlap is computed in `f32` exactly as
//! TensorFlow's CPU kernel does, corners normalized with min/max, and a box
//! of zero area overlaps nothing.

/// A box by two opposite corners, `[a0, b0, a1, b1]`: `(x0, y0, x1, y1)` or
/// TensorFlow's `(y0, x0, y1, x1)` (the overlap does not care which axis is which).
pub type Corners = [f32; 4];

/// One candidate for suppression.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Its box.
    pub corners: Corners,
    /// Its score; the visiting order.
    pub score: f32,
    /// Its class: boxes of different classes never suppress each other.
    pub class: i64,
}

/// A box with its corners ordered and its area, computed once.
#[derive(Debug, Clone, Copy)]
struct Ordered {
    low: [f32; 2],
    high: [f32; 2],
    area: f32,
}

impl Ordered {
    #[inline]
    fn new(c: &Corners) -> Self {
        let low = [c[0].min(c[2]), c[1].min(c[3])];
        let high = [c[0].max(c[2]), c[1].max(c[3])];
        Self {
            low,
            high,
            area: (high[0] - low[0]) * (high[1] - low[1]),
        }
    }

    /// Intersection over union, as TensorFlow's `IOU` in `non_max_suppression_op.cc`.
    #[inline]
    fn iou(&self, other: &Self) -> f32 {
        if self.area <= 0.0 || other.area <= 0.0 {
            return 0.0;
        }
        let low0 = self.low[0].max(other.low[0]);
        let low1 = self.low[1].max(other.low[1]);
        let high0 = self.high[0].min(other.high[0]);
        let high1 = self.high[1].min(other.high[1]);
        let inter = (high0 - low0).max(0.0) * (high1 - low1).max(0.0);
        inter / (self.area + other.area - inter)
    }
}

/// The indices of the candidates kept, best first: at most `max_results`.
///
/// `iou_threshold` is the overlap above which the lower-scored box of a
/// class is dropped. Scores are not thresholded here (filter before).
/// A NaN score sorts last and is never kept.
#[must_use]
pub fn suppress(candidates: &[Candidate], iou_threshold: f32, max_results: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| !candidates[i].score.is_nan())
        .collect();
    // Stable: equal scores keep their index order.
    order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score));
    let ordered: Vec<Ordered> = candidates
        .iter()
        .map(|c| Ordered::new(&c.corners))
        .collect();
    let mut kept: Vec<usize> = Vec::new();
    // Per class, the kept boxes: a candidate is compared with its own class only.
    let mut by_class: Vec<(i64, Vec<usize>)> = Vec::new();
    for index in order {
        if kept.len() >= max_results {
            break;
        }
        let class = candidates[index].class;
        let slot = by_class
            .iter()
            .position(|(c, _)| *c == class)
            .unwrap_or_else(|| {
                by_class.push((class, Vec::new()));
                by_class.len() - 1
            });
        let same = &mut by_class[slot].1;
        let candidate = &ordered[index];
        // Newest first, as TensorFlow walks its selected list.
        if same
            .iter()
            .rev()
            .all(|&k| candidate.iou(&ordered[k]) <= iou_threshold)
        {
            same.push(index);
            kept.push(index);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn candidate(corners: Corners, score: f32, class: i64) -> Candidate {
        Candidate {
            corners,
            score,
            class,
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_the_best() {
        let boxes = [
            candidate([0.0, 0.0, 10.0, 10.0], 0.8, 0),
            candidate([1.0, 1.0, 11.0, 11.0], 0.9, 0),
            candidate([50.0, 50.0, 60.0, 60.0], 0.5, 0),
        ];
        assert_eq!(suppress(&boxes, 0.45, 10), vec![1, 2]);
    }

    #[test]
    fn classes_never_suppress_each_other() {
        let boxes = [
            candidate([0.0, 0.0, 10.0, 10.0], 0.8, 0),
            candidate([0.0, 0.0, 10.0, 10.0], 0.9, 1),
        ];
        assert_eq!(suppress(&boxes, 0.45, 10), vec![1, 0]);
    }

    #[test]
    fn equal_scores_keep_the_lower_index_and_max_results_cuts() {
        let boxes = [
            candidate([0.0, 0.0, 1.0, 1.0], 0.5, 0),
            candidate([5.0, 5.0, 6.0, 6.0], 0.5, 0),
            candidate([9.0, 9.0, 10.0, 10.0], 0.5, 0),
        ];
        assert_eq!(suppress(&boxes, 0.5, 2), vec![0, 1]);
    }

    #[test]
    fn corners_in_either_order_and_empty_boxes() {
        let boxes = [
            candidate([10.0, 10.0, 0.0, 0.0], 0.9, 0),
            candidate([0.0, 0.0, 10.0, 10.0], 0.8, 0),
            candidate([3.0, 3.0, 3.0, 8.0], 0.7, 0),
            candidate([3.0, 3.0, 3.0, 8.0], 0.6, 0),
        ];
        // Flipped corners are the same box; zero-area boxes overlap nothing.
        assert_eq!(suppress(&boxes, 0.5, 10), vec![0, 2, 3]);
    }

    #[test]
    fn iou_is_strictly_above_the_threshold_to_suppress() {
        // IoU of these two is exactly 0.5 (intersection 50, union 100).
        let boxes = [
            candidate([0.0, 0.0, 10.0, 7.5], 0.9, 0),
            candidate([0.0, 2.5, 10.0, 10.0], 0.8, 0),
        ];
        assert_eq!(suppress(&boxes, 0.5, 10), vec![0, 1]);
        assert_eq!(suppress(&boxes, 0.49, 10), vec![0]);
    }

    #[test]
    fn nan_scores_are_never_kept() {
        let boxes = [
            candidate([0.0, 0.0, 1.0, 1.0], f32::NAN, 0),
            candidate([0.0, 0.0, 1.0, 1.0], 0.1, 0),
        ];
        assert_eq!(suppress(&boxes, 0.5, 10), vec![1]);
    }

    /// The textbook quadratic algorithm, class by class, merged by score.
    fn reference(candidates: &[Candidate], iou: f32, max: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| candidates[b].score.total_cmp(&candidates[a].score));
        let mut suppressed = vec![false; candidates.len()];
        let mut kept = Vec::new();
        for (rank, &i) in order.iter().enumerate() {
            if suppressed[i] {
                continue;
            }
            kept.push(i);
            let a = Ordered::new(&candidates[i].corners);
            for &j in &order[rank + 1..] {
                if candidates[j].class == candidates[i].class
                    && a.iou(&Ordered::new(&candidates[j].corners)) > iou
                {
                    suppressed[j] = true;
                }
            }
        }
        kept.truncate(max);
        kept
    }

    proptest! {
        #[test]
        fn agrees_with_the_textbook_algorithm(
            raw in prop::collection::vec(
                (0.0f32..100.0, 0.0f32..100.0, 1.0f32..40.0, 1.0f32..40.0, 0.0f32..1.0, 0i64..3),
                0..120,
            ),
            iou in 0.1f32..0.9,
            max in 1usize..50,
        ) {
            let candidates: Vec<Candidate> = raw
                .iter()
                .map(|&(x, y, w, h, score, class)| candidate([x, y, x + w, y + h], score, class))
                .collect();
            prop_assert_eq!(suppress(&candidates, iou, max), reference(&candidates, iou, max));
        }
    }
}
