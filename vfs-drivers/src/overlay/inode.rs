//! Inode numbers: every layer keeps its own, tagged with the layer so they never collide.
//!
//! The scheme is Linux overlayfs' `xino`: the top bits of `st_ino` hold the layer index
//! (the upper is 0, the first lower 1, ...), the rest the layer's own inode number. With
//! one lower that is one bit, with 500 lowers nine, so a layer's numbers keep at least 55
//! bits. An upper number that fits is passed through unchanged, so an overlay over an
//! empty lower reports exactly the upper's numbers. A number too large for its share is
//! folded into it by a hash; only then can two objects of one layer collide (overlayfs
//! gives up `xino` in that case; we keep numbers distinct with overwhelming probability).

/// Maps `(layer, layer inode number)` to the overlay's inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InoMap {
    /// How far the layer index is shifted: 64 when there is nothing to tag.
    shift: u32,
}

impl InoMap {
    /// The map for an overlay with `lowers` lower layers.
    pub(crate) fn new(lowers: usize) -> InoMap {
        let tag_bits = usize::BITS - lowers.leading_zeros();
        InoMap {
            shift: 64u32.saturating_sub(tag_bits),
        }
    }

    /// The overlay inode number of inode `ino` of layer `layer`.
    pub(crate) fn map(self, layer: usize, ino: u64) -> u64 {
        if self.shift >= 64 {
            return ino;
        }
        let mask = (1u64 << self.shift) - 1;
        let low = if ino <= mask { ino } else { mix(ino) & mask };
        ((layer as u64) << self.shift) | low
    }
}

/// The splitmix64 finalizer: spreads every input bit over the whole output.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_numbers_pass_through_and_lowers_are_tagged() {
        let map = InoMap::new(1);
        assert_eq!(map.map(0, 42), 42);
        assert_eq!(map.map(1, 42), (1 << 63) | 42);
        let map = InoMap::new(3);
        assert_eq!(map.map(3, 7), (3 << 62) | 7);
        assert_ne!(map.map(1, 7), map.map(2, 7));
    }

    #[test]
    fn no_lowers_means_no_tagging_and_big_numbers_stay_in_their_layer() {
        assert_eq!(InoMap::new(0).map(0, u64::MAX), u64::MAX);
        let map = InoMap::new(1);
        assert_eq!(map.map(0, u64::MAX) >> 63, 0);
        assert_eq!(map.map(1, u64::MAX) >> 63, 1);
        assert_eq!(InoMap::new(500).map(500, u64::MAX) >> 55, 500);
    }
}
