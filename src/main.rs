fn main() {
    println!("signet");
}
