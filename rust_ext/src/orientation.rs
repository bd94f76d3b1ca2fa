//! EXIF orientation: how a stored image is turned to be displayed upright.

/// The eight EXIF orientations, named by what turns the stored image upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    /// 1: stored upright.
    #[default]
    Identity,
    /// 2: mirror left to right.
    FlipH,
    /// 3: turn half a circle.
    Rotate180,
    /// 4: mirror top to bottom.
    FlipV,
    /// 5: mirror across the main diagonal.
    Transpose,
    /// 6: turn 90 degrees clockwise.
    Rotate90,
    /// 7: mirror across the anti-diagonal.
    Transverse,
    /// 8: turn 90 degrees counter-clockwise.
    Rotate270,
}

impl Orientation {
    /// From the EXIF tag value; anything outside 1..=8 counts as upright.
    #[must_use]
    pub fn from_exif(value: u8) -> Self {
        match value {
            2 => Self::FlipH,
            3 => Self::Rotate180,
            4 => Self::FlipV,
            5 => Self::Transpose,
            6 => Self::Rotate90,
            7 => Self::Transverse,
            8 => Self::Rotate270,
            _ => Self::Identity,
        }
    }

    /// The EXIF tag value, 1..=8.
    #[must_use]
    pub fn exif(self) -> u8 {
        match self {
            Self::Identity => 1,
            Self::FlipH => 2,
            Self::Rotate180 => 3,
            Self::FlipV => 4,
            Self::Transpose => 5,
            Self::Rotate90 => 6,
            Self::Transverse => 7,
            Self::Rotate270 => 8,
        }
    }

    /// Whether width and height swap when displayed (5 to 8).
    #[must_use]
    pub fn transposes(self) -> bool {
        matches!(
            self,
            Self::Transpose | Self::Rotate90 | Self::Transverse | Self::Rotate270
        )
    }

    /// The displayed `(width, height)` of a stored `width x height` image.
    #[must_use]
    pub fn displayed<T>(self, width: T, height: T) -> (T, T) {
        if self.transposes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Copies `src`, a stored-orientation RGB8 block of `width x height`, upright
    /// into `canvas` (RGB8, `canvas_width` pixels per row) with its top-left
    /// corner at `origin`. Pixels that would fall outside the canvas are skipped.
    pub fn blit(
        self,
        src: &[u8],
        width: usize,
        height: usize,
        canvas: &mut [u8],
        canvas_width: usize,
        origin: (usize, usize),
    ) {
        let (out_w, out_h) = self.displayed(width, height);
        let (last_x, last_y) = (width.saturating_sub(1), height.saturating_sub(1));
        let row_bytes = canvas_width * 3;
        for dy in 0..out_h {
            let start = (origin.1 + dy) * row_bytes + origin.0 * 3;
            let Some(row) =
                canvas.get_mut(start..start + out_w.min(canvas_width.saturating_sub(origin.0)) * 3)
            else {
                continue;
            };
            if self == Self::Identity {
                if let Some(line) = src.get(dy * width * 3..(dy * width + row.len() / 3) * 3) {
                    row.copy_from_slice(line);
                }
                continue;
            }
            for (dx, pixel) in row.chunks_exact_mut(3).enumerate() {
                let (sx, sy) = match self {
                    Self::Identity => (dx, dy),
                    Self::FlipH => (last_x - dx, dy),
                    Self::Rotate180 => (last_x - dx, last_y - dy),
                    Self::FlipV => (dx, last_y - dy),
                    Self::Transpose => (dy, dx),
                    Self::Rotate90 => (dy, last_y - dx),
                    Self::Transverse => (last_x - dy, last_y - dx),
                    Self::Rotate270 => (last_x - dy, dx),
                };
                let at = (sy * width + sx) * 3;
                if let Some(value) = src.get(at..at + 3) {
                    pixel.copy_from_slice(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixels are numbered 0..6 in every channel.
    fn numbered() -> Vec<u8> {
        (0..6u8).flat_map(|v| [v, v, v]).collect()
    }

    fn upright(o: Orientation) -> Vec<u8> {
        let (w, h) = o.displayed(3, 2);
        let mut canvas = vec![99; w * h * 3];
        o.blit(&numbered(), 3, 2, &mut canvas, w, (0, 0));
        canvas.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn each_orientation_turns_the_image_upright() {
        // Stored:  0 1 2
        //          3 4 5
        assert_eq!(upright(Orientation::Identity), [0, 1, 2, 3, 4, 5]);
        assert_eq!(upright(Orientation::FlipH), [2, 1, 0, 5, 4, 3]);
        assert_eq!(upright(Orientation::Rotate180), [5, 4, 3, 2, 1, 0]);
        assert_eq!(upright(Orientation::FlipV), [3, 4, 5, 0, 1, 2]);
        assert_eq!(upright(Orientation::Transpose), [0, 3, 1, 4, 2, 5]);
        assert_eq!(upright(Orientation::Rotate90), [3, 0, 4, 1, 5, 2]);
        assert_eq!(upright(Orientation::Transverse), [5, 2, 4, 1, 3, 0]);
        assert_eq!(upright(Orientation::Rotate270), [2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn exif_values_round_trip() {
        for value in 1..=8 {
            assert_eq!(Orientation::from_exif(value).exif(), value);
        }
        assert_eq!(Orientation::from_exif(0), Orientation::Identity);
        assert_eq!(Orientation::from_exif(9), Orientation::Identity);
    }

    #[test]
    fn blit_places_at_origin_and_clips() {
        let mut canvas = vec![0; 4 * 3 * 3];
        Orientation::Rotate90.blit(&numbered(), 3, 2, &mut canvas, 4, (3, 1));
        let firsts: Vec<u8> = canvas.chunks(3).map(|p| p[0]).collect();
        assert_eq!(firsts, [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 4]);
    }
}
