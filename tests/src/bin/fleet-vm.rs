//! Boots one test-bed VM by hand (`scripts/vm boot`): the same image, network and ssh as the
//! tests (`fleet_tests::vm`), then prints how to log in and keeps it up until Enter (or the end of
//! input, or `--for` seconds), and powers it off.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use fleet_tests::vm::{TestBed, VmConfig};

#[derive(Parser)]
#[command(name = "fleet-vm", about = "Boot a Fleet test-bed VM by hand")]
struct Args {
    /// The VM's name and hostname.
    #[arg(long, default_value = "web1")]
    name: String,
    /// 1 or 2.
    #[arg(long, default_value_t = 2)]
    vcpus: u32,
    #[arg(long, default_value_t = 1024)]
    memory_mib: u32,
    /// A directory of this machine the guest mounts read-only at /mnt/fleet.
    #[arg(long)]
    share: Option<PathBuf>,
    /// GUEST_PORT:HOST_PORT: the guest's connections to 10.0.2.100:GUEST_PORT reach
    /// 127.0.0.1:HOST_PORT here.
    #[arg(long, value_parser = parse_forward)]
    forward: Vec<(u16, u16)>,
    /// Power off after this many seconds instead of waiting for Enter.
    #[arg(long = "for")]
    seconds: Option<u64>,
}

fn parse_forward(s: &str) -> Result<(u16, u16), String> {
    let (g, h) = s.split_once(':').ok_or("expected GUEST_PORT:HOST_PORT")?;
    Ok((
        g.parse().map_err(|e| format!("{g}: {e}"))?,
        h.parse().map_err(|e| format!("{h}: {e}"))?,
    ))
}

fn main() {
    let args = Args::parse();
    let bed = TestBed::prepare();
    let mut config = VmConfig::new(&args.name)
        .vcpus(args.vcpus)
        .memory_mib(args.memory_mib);
    if let Some(share) = &args.share {
        config = config.share(share);
    }
    for (g, h) in args.forward {
        config = config.forward(g, h);
    }
    eprintln!(
        "image {} (ready in {:.1?}); booting {} under {}...",
        bed.image.dir.display(),
        bed.image.ensured_in,
        args.name,
        bed.accel.name()
    );
    let mut vm = bed.boot(config);
    let ssh = vm.ssh_command();
    let line: Vec<String> = std::iter::once(ssh.get_program())
        .chain(ssh.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    println!(
        "{} is up: boot to ssh {:.1?}, qemu pid {}\nlog in: {}\nserial console: {}",
        vm.name(),
        vm.boot_time.unwrap_or_default(),
        vm.pid(),
        line.join(" "),
        bed.dir().join(vm.name()).join("serial.log").display()
    );
    match args.seconds {
        Some(s) => std::thread::sleep(Duration::from_secs(s)),
        None => {
            eprintln!("Enter (or end of input) powers it off.");
            let _ = std::io::stdin().lock().read_line(&mut String::new());
        }
    }
    let off = vm.poweroff(Duration::from_secs(120));
    eprintln!("powered off in {off:.1?}");
}
