//! `vfs`: snapshot, restore, diff, export, import, verify and garbage-collect filesystems
//! in a content-addressed store; serve the actions over JSON-RPC; serve a mount table
//! through FUSE (`vfs mount`, `vfs serve --fuse-mount`); `vfs demo` runs the
//! whole story on embedded defaults. `vfs --help` lists the commands.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
