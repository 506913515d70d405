//! What a VM is made of ([`VmConfig`]) and the qemu command line that makes it
//! ([`command_line`], pure: its unit tests pin the network's limits).
//!
//! The network, the test bed's one safety property: the first card is qemu's user network with
//! `restrict=on`, so the guest reaches nothing (not this machine, not beyond) except what the
//! command line forwards: ssh from `127.0.0.1:PORT` (hostfwd, bound to loopback only), and each
//! [`GuestFwd`], a guest address (`10.0.2.100:PORT`) whose every connection qemu hands to
//! `socat - TCP:127.0.0.1:PORT` (guestfwd `cmd:`, a new socat per connection, so a client that
//! reconnects, like the agent, gets a new connection each time). The optional second card is a
//! point-to-point `dgram` socket network between two VMs, over two UDP ports on 127.0.0.1.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::accel::Accel;
use super::image::Image;

/// The guest address at which [`GuestFwd`]s are reached.
pub const GUEST_FWD_ADDR: &str = "10.0.2.100";

/// The most vCPUs a VM may have: the machine has 2 cores, shared.
pub const MAX_VCPUS: u32 = 2;

/// One VM: its name (the guest's hostname), size, forwards, share and LAN link.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub forwards: Vec<GuestFwd>,
    /// A host directory the guest mounts read-only at `/mnt/fleet` (9p).
    pub share: Option<PathBuf>,
    pub lan: Option<LanLink>,
}

impl VmConfig {
    /// A VM named `name` with 2 vCPUs and 1 GiB of memory, no forward, share or LAN.
    pub fn new(name: &str) -> VmConfig {
        VmConfig {
            name: name.to_string(),
            vcpus: 2,
            memory_mib: 1024,
            forwards: Vec::new(),
            share: None,
            lan: None,
        }
    }

    pub fn vcpus(mut self, n: u32) -> VmConfig {
        self.vcpus = n;
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> VmConfig {
        self.memory_mib = mib;
        self
    }

    /// Guest connections to `10.0.2.100:guest_port` reach `127.0.0.1:host_port` here.
    pub fn forward(mut self, guest_port: u16, host_port: u16) -> VmConfig {
        self.forwards.push(GuestFwd {
            guest_port,
            host_port,
        });
        self
    }

    pub fn share(mut self, dir: &Path) -> VmConfig {
        self.share = Some(dir.to_path_buf());
        self
    }

    pub fn lan(mut self, link: LanLink) -> VmConfig {
        self.lan = Some(link);
        self
    }
}

/// A TCP forward from the guest (`10.0.2.100:guest_port`) to `127.0.0.1:host_port` here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestFwd {
    pub guest_port: u16,
    pub host_port: u16,
}

/// A network between two VMs and nothing else.
pub struct Lan;

impl Lan {
    /// The two ends of a new link: give one to each VM. Their addresses are 10.0.3.1 and
    /// 10.0.3.2/24.
    pub fn pair() -> [LanLink; 2] {
        // Both sockets open at once, so the two ports differ; free again when qemu binds them.
        let port = |s: &std::net::UdpSocket| s.local_addr().unwrap().port();
        let sa = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sb = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (port(&sa), port(&sb));
        [
            LanLink {
                index: 1,
                local_port: a,
                remote_port: b,
            },
            LanLink {
                index: 2,
                local_port: b,
                remote_port: a,
            },
        ]
    }
}

/// One VM's end of a [`Lan`]: its UDP port on 127.0.0.1, the peer's, and its index (1 or 2),
/// which makes its address and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LanLink {
    pub index: u8,
    pub local_port: u16,
    pub remote_port: u16,
}

impl LanLink {
    pub fn address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 3, self.index)
    }

    pub fn mac(&self) -> String {
        format!("52:54:00:fe:03:{:02x}", self.index)
    }

    /// The guest's systemd-networkd file for this card (from the seed; it sorts before the
    /// image's DHCP file, so this card gets a fixed address and no DHCP).
    pub fn network_file(&self) -> String {
        format!(
            "[Match]\nMACAddress={}\n\n[Network]\nAddress={}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n",
            self.mac(),
            self.address()
        )
    }
}

/// The files of one VM that its command line names.
#[derive(Debug, Clone)]
pub struct VmFiles {
    pub overlay: PathBuf,
    pub seed: PathBuf,
    pub serial_log: PathBuf,
    pub pidfile: PathBuf,
}

/// The qemu arguments (after the program name) for `config`, its ssh forwarded from
/// `127.0.0.1:ssh_port`.
///
/// The disk is the VM's overlay with `cache=unsafe`: the guest's fsyncs still reach qemu, but qemu
/// does not flush them to this machine's disk, since the overlay is deleted after the run (a
/// crash of this machine is the only thing that could lose what the guest synced).
///
/// # Panics
/// If the config breaks a rule of the test bed: more than [`MAX_VCPUS`], a name that is not a
/// hostname, a path with a comma (qemu's option separator).
pub fn command_line(
    config: &VmConfig,
    accel: Accel,
    image: &Image,
    files: &VmFiles,
    ssh_port: u16,
) -> Vec<String> {
    assert!(
        (1..=MAX_VCPUS).contains(&config.vcpus),
        "a VM has 1 to {MAX_VCPUS} vCPUs, not {}",
        config.vcpus
    );
    assert!(
        !config.name.is_empty()
            && config.name.len() <= 63
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "a VM name is a hostname (a-z, 0-9, -): {:?}",
        config.name
    );
    let path = |p: &Path| {
        let s = p.display().to_string();
        assert!(
            !s.contains(','),
            "qemu cannot take a path with a comma: {s}"
        );
        s
    };
    let mut args: Vec<String> = accel.qemu_args().iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "-m",
            &config.memory_mib.to_string(),
            "-smp",
            &config.vcpus.to_string(),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            &format!("file:{}", path(&files.serial_log)),
            "-pidfile",
            &path(&files.pidfile),
            "-kernel",
            &path(&image.kernel()),
            "-initrd",
            &path(&image.initrd()),
            "-append",
            &format!(
                "root=/dev/vda rw console=ttyS0 systemd.hostname={}",
                config.name
            ),
            "-drive",
            &format!(
                "file={},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
                path(&files.overlay)
            ),
            "-device",
            "virtio-rng-pci",
        ]
        .map(String::from),
    );
    let mut user = format!("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{ssh_port}-:22");
    for f in &config.forwards {
        user.push_str(&format!(
            ",guestfwd=tcp:{GUEST_FWD_ADDR}:{}-cmd:socat - TCP:127.0.0.1:{}",
            f.guest_port, f.host_port
        ));
    }
    args.extend(["-netdev".into(), user]);
    args.extend(["-device".into(), "virtio-net-pci,netdev=net0".into()]);
    if let Some(l) = &config.lan {
        args.extend([
            "-netdev".into(),
            format!(
                "dgram,id=lan0,local.type=inet,local.host=127.0.0.1,local.port={},\
                 remote.type=inet,remote.host=127.0.0.1,remote.port={}",
                l.local_port, l.remote_port
            ),
            "-device".into(),
            format!("virtio-net-pci,netdev=lan0,mac={}", l.mac()),
        ]);
    }
    let mut virtfs = |dir: &Path, tag: &str| {
        args.extend([
            "-virtfs".into(),
            format!(
                "local,path={},mount_tag={tag},security_model=none,readonly=on",
                path(dir)
            ),
        ]);
    };
    virtfs(&files.seed, "seed");
    if let Some(share) = &config.share {
        virtfs(share, "share");
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn files() -> VmFiles {
        VmFiles {
            overlay: "/r/web1/disk.qcow2".into(),
            seed: "/r/web1/seed".into(),
            serial_log: "/r/web1/serial.log".into(),
            pidfile: "/r/web1/qemu.pid".into(),
        }
    }

    fn image() -> Image {
        Image {
            dir: "/i".into(),
            ensured_in: Duration::ZERO,
        }
    }

    fn option_values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn the_network_reaches_only_loopback_and_the_user_network_is_restricted() {
        let [a, _] = Lan::pair();
        let config = VmConfig::new("web1")
            .forward(7443, 40001)
            .forward(9093, 40002)
            .share(Path::new("/r/share"))
            .lan(a);
        let args = command_line(&config, Accel::Tcg, &image(), &files(), 2222);
        let netdevs = option_values(&args, "-netdev");
        assert_eq!(netdevs.len(), 2, "{netdevs:?}");
        let user = netdevs[0];
        assert!(
            user.starts_with("user,") && user.contains(",restrict=on,"),
            "{user}"
        );
        assert!(user.contains("hostfwd=tcp:127.0.0.1:2222-:22"), "{user}");
        assert_eq!(user.matches("hostfwd=").count(), 1, "{user}");
        assert!(
            user.contains("guestfwd=tcp:10.0.2.100:7443-cmd:socat - TCP:127.0.0.1:40001"),
            "{user}"
        );
        assert!(
            user.contains("guestfwd=tcp:10.0.2.100:9093-cmd:socat - TCP:127.0.0.1:40002"),
            "{user}"
        );
        let lan = netdevs[1];
        assert!(lan.starts_with("dgram,"), "{lan}");
        assert_eq!(lan.matches("host=127.0.0.1").count(), 2, "{lan}");
        // Every address named anywhere is loopback or the guest-side forward address.
        for a in &args {
            for word in a.split([',', '=', ':', ' ', '-']) {
                if word.parse::<Ipv4Addr>().is_ok() {
                    assert!(word == "127.0.0.1" || word == GUEST_FWD_ADDR, "{a}");
                }
            }
        }
        let shares = option_values(&args, "-virtfs");
        assert_eq!(shares.len(), 2);
        assert!(shares.iter().all(|s| s.ends_with(",readonly=on")));
        assert!(shares[1].contains("path=/r/share,mount_tag=share"));
    }

    #[test]
    fn a_vm_has_at_most_two_vcpus_and_a_hostname() {
        let ok = command_line(&VmConfig::new("a-1"), Accel::Kvm, &image(), &files(), 1);
        assert_eq!(option_values(&ok, "-smp"), ["2"]);
        assert_eq!(option_values(&ok, "-accel"), ["kvm"]);
        for bad in [VmConfig::new("web1").vcpus(3), VmConfig::new("Web_1")] {
            let r =
                std::panic::catch_unwind(|| command_line(&bad, Accel::Tcg, &image(), &files(), 1));
            assert!(r.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_two_ends_of_a_lan_point_at_each_other() {
        let [a, b] = Lan::pair();
        assert_eq!((a.local_port, a.remote_port), (b.remote_port, b.local_port));
        assert_ne!(a.local_port, b.local_port);
        assert_eq!(b.address(), Ipv4Addr::new(10, 0, 3, 2));
        assert!(a.network_file().contains("MACAddress=52:54:00:fe:03:01\n"));
        assert!(a.network_file().contains("Address=10.0.3.1/24\n"));
    }
}
