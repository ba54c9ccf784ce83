//! Resident memory of one zone held in signet's representation (a measurement aid).
fn rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .unwrap_or("")
        .to_string()
}
fn main() {
    let path = std::env::args().nth(1).expect("zone file");
    let origin = signet::dns::name::Name::parse("example.com.", None).unwrap();
    println!("start {}", rss());
    let (z, _) = signet::zonefile::load_zone(std::path::Path::new(&path), &origin).unwrap();
    signet::zone::service::release_free_memory();
    println!("loaded {} records {}", z.record_count(), rss());
}
