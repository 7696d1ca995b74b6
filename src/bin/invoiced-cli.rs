//! `invoiced-cli`: a command-line client for the daemon, used like `lightning-cli`.
//!
//! `invoiced-cli [--data-dir DIR | --rpc-file PATH] [-k] METHOD [ARGS...]`: positional arguments,
//! or `name=value` pairs with `-k`. An argument that parses as JSON is sent as JSON, anything else
//! as a string. The result is printed as pretty JSON; an error goes to stderr with exit code 1.
//! With `--qr`, an `invoice` result's bolt11 is also printed as a terminal QR code.
//! `--version` (`-V`) prints the version and the commit it was built from.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Map, Value};

const USAGE: &str =
    "usage: invoiced-cli [--data-dir DIR | --rpc-file PATH] [-k] [--qr] METHOD [ARGS...]\n       invoiced-cli --version";

struct Args {
    rpc_file: PathBuf,
    keywords: bool,
    qr: bool,
    method: String,
    params: Vec<String>,
}

/// What the command line asks for: a call, or the version.
enum Request {
    Call(Args),
    Version,
}

fn parse_args() -> Result<Request, String> {
    let mut data_dir: Option<PathBuf> = None;
    let mut rpc_file: Option<PathBuf> = None;
    let mut keywords = false;
    let mut qr = false;
    let mut rest = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if !rest.is_empty() {
            rest.push(a);
            continue;
        }
        match a.as_str() {
            "--data-dir" => data_dir = Some(it.next().ok_or(USAGE)?.into()),
            "--rpc-file" => rpc_file = Some(it.next().ok_or(USAGE)?.into()),
            "-k" | "--keywords" => keywords = true,
            "--qr" => qr = true,
            "-h" | "--help" => return Err(USAGE.into()),
            "-V" | "--version" => return Ok(Request::Version),
            _ if a.starts_with("--data-dir=") => data_dir = Some(a["--data-dir=".len()..].into()),
            _ if a.starts_with("--rpc-file=") => rpc_file = Some(a["--rpc-file=".len()..].into()),
            _ => rest.push(a),
        }
    }
    let mut rest = rest.into_iter();
    let method = rest.next().ok_or(USAGE)?;
    let data_dir = data_dir.unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join(".invoiced")
    });
    Ok(Request::Call(Args {
        rpc_file: rpc_file.unwrap_or_else(|| data_dir.join("lightning-rpc")),
        keywords,
        qr,
        method,
        params: rest.collect(),
    }))
}

/// A value that parses as JSON is JSON; anything else is a string.
fn to_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

fn build_params(args: &Args) -> Result<Value, String> {
    if args.keywords {
        let mut m = Map::new();
        for p in &args.params {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("'{p}' is not name=value"))?;
            m.insert(k.to_owned(), to_json(v));
        }
        Ok(Value::Object(m))
    } else {
        Ok(Value::Array(
            args.params.iter().map(|p| to_json(p)).collect(),
        ))
    }
}

fn call(args: &Args) -> Result<Value, String> {
    let mut stream = UnixStream::connect(&args.rpc_file)
        .map_err(|e| format!("cannot connect to {}: {e}", args.rpc_file.display()))?;
    let req = json!({ "jsonrpc": "2.0", "id": format!("cli:{}#{}", args.method, std::process::id()), "method": args.method, "params": build_params(args)? });
    stream
        .write_all(req.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a full response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"\n\n") {
            break;
        }
    }
    serde_json::from_slice(&buf).map_err(|e| format!("bad response: {e}"))
}

/// Prints `text` as a QR code of half-block characters (upper-case: BOLT11 allows it and QR
/// codes it more compactly).
fn print_qr(text: &str) {
    match qrcode::QrCode::new(text.to_ascii_uppercase().as_bytes()) {
        Ok(code) => {
            let width = code.width();
            let dark =
                |x: usize, y: usize| x < width && y < width && code[(x, y)] == qrcode::Color::Dark;
            let quiet = 2usize;
            let mut out = String::new();
            let span = width + 2 * quiet;
            for row in (0..span).step_by(2) {
                for col in 0..span {
                    let (x, y) = (col.wrapping_sub(quiet), row.wrapping_sub(quiet));
                    let top = dark(x, y);
                    let bottom = dark(x, y.wrapping_add(1));
                    // Light modules print as ink on a dark terminal.
                    out.push(match (top, bottom) {
                        (false, false) => '█',
                        (false, true) => '▀',
                        (true, false) => '▄',
                        (true, true) => ' ',
                    });
                }
                out.push('\n');
            }
            print!("{out}");
        }
        Err(e) => eprintln!("invoiced-cli: cannot draw QR code: {e}"),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Request::Call(a)) => a,
        Ok(Request::Version) => {
            println!("invoiced-cli {}", invoiced::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match call(&args) {
        Ok(resp) => {
            if let Some(err) = resp.get("error") {
                eprintln!("{}", serde_json::to_string_pretty(err).unwrap_or_default());
                return ExitCode::from(1);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&resp["result"]).unwrap_or_default()
            );
            if let (true, Some(bolt11)) = (args.qr, resp["result"]["bolt11"].as_str()) {
                print_qr(bolt11);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("invoiced-cli: {e}");
            ExitCode::from(1)
        }
    }
}
