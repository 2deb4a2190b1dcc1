//! Which Docker container a process runs in, read from its `/proc/self/mountinfo`.
//!
//! Docker bind-mounts three files of its own into every container it starts (unless the
//! container shares another's): `<data-root>/containers/<id>/hostname`, `hosts` and
//! `resolv.conf` onto `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`. The mount's
//! root names the container's full id whatever the data root is. The hostname says
//! nothing with `--net=host` (it is the host's), and cgroup v2 namespaces hide the id,
//! so neither is used.

use std::collections::BTreeSet;

/// The files Docker bind-mounts from the container's directory, by their mount point.
const DOCKER_FILES: [(&str, &str); 3] = [
    ("/etc/hostname", "hostname"),
    ("/etc/hosts", "hosts"),
    ("/etc/resolv.conf", "resolv.conf"),
];

/// What the mount table says about the container this process runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// No mount of Docker's per-container files: not in a Docker container.
    NotInContainer,
    /// The full id of the container.
    Container(String),
    /// The files come from more than one container's directory; which one is this
    /// process's cannot be told.
    Several(BTreeSet<String>),
}

/// Reads `/proc/self/mountinfo` text. Lines that do not parse are skipped.
pub fn detect(mountinfo: &str) -> Detected {
    let ids: BTreeSet<String> = mountinfo.lines().filter_map(container_of_line).collect();
    let mut each = ids.iter();
    match (each.next(), each.next()) {
        (None, _) => Detected::NotInContainer,
        (Some(id), None) => Detected::Container(id.clone()),
        (Some(_), Some(_)) => Detected::Several(ids),
    }
}

/// The container id of one mountinfo line, if it is one of Docker's per-container files.
///
/// A line is `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPER_OPTIONS`; ROOT is the path inside the mounted filesystem, so with the data root
/// on a filesystem of its own it starts below it (`/containers/<id>/hostname`).
fn container_of_line(line: &str) -> Option<String> {
    let mut fields = line.split(' ');
    let root = unescape(fields.nth(3)?);
    let mount_point = unescape(fields.next()?);
    let (_, file) = DOCKER_FILES.iter().find(|(at, _)| *at == mount_point)?;
    let mut parts = root.rsplit('/');
    if parts.next()? != *file {
        return None;
    }
    let id = parts.next()?;
    if parts.next()? != "containers" || !is_full_id(id) {
        return None;
    }
    Some(id.to_owned())
}

/// A full container id: 64 lowercase hex digits.
pub fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The kernel writes space, tab, newline and backslash in paths as `\` and three octal
/// digits (`\040`); anything else after a `\` is kept as it is.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .and_then(|d| {
                let digits = std::str::from_utf8(d).ok()?;
                u8::from_str_radix(digits, 8).ok()
            });
        match octal {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4e1a1947f94d76a76592af93bdf9f2134a5db9f5fa5e56e23db8997e0b695b2a";
    const OTHER: &str = "0bb2ce3e9e4bbf0f5c1cbc8fd1e5b4cbd8a0e1d2c3b4a5968778695a4b3c2d1e";

    /// The lines Docker 24 on ext4 gives a container, with `id` in its file mounts.
    fn container_lines(data_root: &str, id: &str) -> String {
        format!(
            "\
1102 848 0:98 / / rw,relatime master:434 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/ZK5V:/var/lib/docker/overlay2/l/QX3S,upperdir=/var/lib/docker/overlay2/1f0c/diff,workdir=/var/lib/docker/overlay2/1f0c/work
1103 1102 0:101 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1104 1102 0:102 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1108 1102 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
1109 1102 254:0 {data_root}/containers/{id}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw,discard
1110 1102 254:0 {data_root}/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw,discard
1111 1102 254:0 {data_root}/containers/{id}/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw,discard
1112 1102 254:0 /var/lib/berth /var/lib/berth rw,relatime shared:1 - ext4 /dev/vda rw,discard
1113 1104 0:25 /docker.sock /run/docker.sock rw,nosuid,nodev - tmpfs tmpfs rw,size=2464932k,mode=755
"
        )
    }

    #[test]
    fn table_of_mount_tables() {
        let host = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
42 27 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw
";
        let found = |id: &str| Detected::Container(id.to_owned());
        let cases: Vec<(&str, String, Detected)> = vec![
            ("empty", String::new(), Detected::NotInContainer),
            ("a host", host.to_owned(), Detected::NotInContainer),
            (
                "the default data root",
                container_lines("/var/lib/docker", ID),
                found(ID),
            ),
            (
                "another data root",
                container_lines("/srv/docker-data", ID),
                found(ID),
            ),
            (
                "the data root on a filesystem of its own",
                container_lines("", ID),
                found(ID),
            ),
            (
                "a btrfs subvolume",
                container_lines("/@/var/lib/docker", ID),
                found(ID),
            ),
            (
                "userns-remap",
                container_lines("/var/lib/docker/100000.100000", ID),
                found(ID),
            ),
            (
                "a data root with a space",
                container_lines("/srv/docker\\040data", ID),
                found(ID),
            ),
            (
                "only resolv.conf (hostname and hosts given by the operator)",
                format!("1 0 8:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/sda1 rw\n"),
                found(ID),
            ),
            (
                "Windows line ends",
                container_lines("/var/lib/docker", ID).replace('\n', "\r\n"),
                found(ID),
            ),
            (
                "two containers' files",
                format!(
                    "{}1 0 8:1 /var/lib/docker/containers/{OTHER}/hosts /etc/hosts rw - ext4 /dev/sda1 rw\n",
                    container_lines("/var/lib/docker", ID)
                ),
                Detected::Several(BTreeSet::from([ID.to_owned(), OTHER.to_owned()])),
            ),
            (
                "a short id",
                container_lines("/var/lib/docker", &ID[..12]),
                Detected::NotInContainer,
            ),
            (
                "an uppercase id",
                container_lines("/var/lib/docker", &ID.to_uppercase()),
                Detected::NotInContainer,
            ),
            (
                "the file mounted elsewhere",
                format!("1 0 8:1 /var/lib/docker/containers/{ID}/hostname /mnt/hostname rw - ext4 /dev/sda1 rw\n"),
                Detected::NotInContainer,
            ),
            (
                "another file on /etc/hostname",
                format!("1 0 8:1 /var/lib/docker/containers/{ID}/hosts /etc/hostname rw - ext4 /dev/sda1 rw\n"),
                Detected::NotInContainer,
            ),
            (
                "not under containers/",
                format!("1 0 8:1 /var/lib/docker/volumes/{ID}/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n"),
                Detected::NotInContainer,
            ),
            (
                "the kubelet's /etc/hosts",
                "1 0 8:1 /var/lib/kubelet/pods/0b8f2a56/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw\n"
                    .to_owned(),
                Detected::NotInContainer,
            ),
            (
                "an escaped mount point",
                format!("1 0 8:1 /var/lib/docker/containers/{ID}/hostname /etc\\040x/hostname rw - ext4 /dev/sda1 rw\n"),
                Detected::NotInContainer,
            ),
            (
                "short and broken lines",
                format!("1 0 8:1\n\n \\\n1 0 8:1 /x\n1 0 8:1 {ID}/hostname /etc/hostname\n1 0 8:1 /hostname /etc/hostname rw\n"),
                Detected::NotInContainer,
            ),
        ];
        for (what, text, want) in cases {
            assert_eq!(detect(&text), want, "{what}");
        }
    }

    #[test]
    fn table_of_escapes() {
        let cases = [
            ("/plain", "/plain"),
            ("/a\\040b", "/a b"),
            ("/tab\\011x", "/tab\tx"),
            ("/back\\134slash", "/back\\slash"),
            ("/nl\\012", "/nl\n"),
            ("/not\\09x", "/not\\09x"),
            ("/short\\04", "/short\\04"),
            ("/end\\", "/end\\"),
            ("/over\\777", "/over\\777"),
            ("/utf8-\u{e9}\\040", "/utf8-\u{e9} "),
            ("/bytes\\303\\251", "/bytes\u{e9}"),
        ];
        for (raw, want) in cases {
            assert_eq!(unescape(raw), want, "{raw}");
        }
    }

    #[test]
    fn full_ids() {
        assert!(is_full_id(ID));
        assert!(!is_full_id(&ID[1..]));
        assert!(!is_full_id(&format!("{ID}0")));
        assert!(!is_full_id(&ID.replace('a', "g")));
        assert!(!is_full_id(""));
    }
}
