// Finds libbaton through its pkg-config file (baton.pc, installed with the
// library; PKG_CONFIG_PATH points at another one, e.g. a build tree's).
fn main() {
    if let Err(e) = pkg_config::Config::new().atleast_version("0.1").probe("baton") {
        eprintln!("baton-sys: libbaton not found through pkg-config: {}", e);
        eprintln!("baton-sys: install libbaton (its baton.pc), or set PKG_CONFIG_PATH to the directory holding baton.pc");
        std::process::exit(1);
    }
}
