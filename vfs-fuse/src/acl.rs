//! POSIX ACLs as the kernel hands them over: `system.posix_acl_access` and
//! `system.posix_acl_default` xattrs.
//!
//! No driver stores ACLs, so an access ACL that only restates the permission bits (what
//! `cp -a`, `tar` and `rsync -A` write for an ordinary file) is applied as the `chmod`
//! it means, one that names extra users or groups is refused with `EOPNOTSUPP`, and
//! reading either ACL finds none (`ENODATA`): the mode is the whole truth, as on a
//! filesystem mounted without ACL support.

/// The access ACL's xattr name.
pub(crate) const ACCESS: &str = "system.posix_acl_access";
/// The default ACL's xattr name.
pub(crate) const DEFAULT: &str = "system.posix_acl_default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// Whether `name` is one of the ACL xattrs.
pub(crate) fn is_acl(name: &str) -> bool {
    name == ACCESS || name == DEFAULT
}

/// The permission bits (`0o777`) an access ACL in the kernel's xattr format stands
/// for, or `None` if it is malformed or holds entries the bits cannot express.
pub(crate) fn mode_of(value: &[u8]) -> Option<u32> {
    let (header, entries) = value.split_at_checked(4)?;
    if u32::from_le_bytes(header.try_into().ok()?) != VERSION || entries.len() % 8 != 0 {
        return None;
    }
    let (mut user, mut group, mut mask, mut other) = (None, None, None, None);
    for entry in entries.chunks_exact(8) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let perm = u32::from(u16::from_le_bytes([entry[2], entry[3]]) & 0o7);
        let slot = match tag {
            USER_OBJ => &mut user,
            GROUP_OBJ => &mut group,
            MASK => &mut mask,
            OTHER => &mut other,
            USER | GROUP => return None,
            _ => return None,
        };
        if slot.replace(perm).is_some() {
            return None;
        }
    }
    // With a mask, the group bits of the mode are the mask (acl(5)).
    let group = mask.or(group)?;
    Some((user? << 6) | (group << 3) | other?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16)]) -> Vec<u8> {
        let mut value = VERSION.to_le_bytes().to_vec();
        for (tag, perm) in entries {
            value.extend_from_slice(&tag.to_le_bytes());
            value.extend_from_slice(&perm.to_le_bytes());
            value.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        value
    }

    #[test]
    fn a_mode_only_acl_is_its_mode() {
        let value = acl(&[(USER_OBJ, 7), (GROUP_OBJ, 5), (OTHER, 5)]);
        assert_eq!(mode_of(&value), Some(0o755));
        let masked = acl(&[(USER_OBJ, 6), (GROUP_OBJ, 6), (MASK, 4), (OTHER, 0)]);
        assert_eq!(mode_of(&masked), Some(0o640));
    }

    #[test]
    fn named_entries_and_garbage_are_refused() {
        let named = acl(&[
            (USER_OBJ, 7),
            (USER, 7),
            (GROUP_OBJ, 5),
            (MASK, 7),
            (OTHER, 5),
        ]);
        assert_eq!(mode_of(&named), None);
        assert_eq!(mode_of(b"\x02\0\0\0\x01"), None);
        assert_eq!(mode_of(&acl(&[(USER_OBJ, 7), (OTHER, 5)])), None);
        assert_eq!(mode_of(&[]), None);
    }
}
