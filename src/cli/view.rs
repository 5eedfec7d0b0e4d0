//! `cryomotion view`: serve the viewer of a trained run to a browser.

use std::io::Write as _;
use std::net::{IpAddr, TcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use cryomotion::view::Viewer;
use cryomotion::view::http::{Request, Response, serve};

use super::trained_run;

/// Explore the motions of a run in the browser.
///
/// Serves a page (from the binary itself; it needs no network) with the latent space of each
/// half coloured by any per-particle property: click a particle to see the map at its latent as
/// an isosurface and save it as MRC; draw a polygon to count particles and save them as a STAR
/// subset (and .cs for a cryoSPARC input); draw a path to save a volume series and a multi-model
/// PDB; show the consensus and deformable-backprojection maps. Files go to OUT/view/.
#[derive(clap::Args)]
#[command(after_help = "Example:
  cryomotion view OUT --port 8765
  # on a cluster node, from your workstation: ssh -L 8765:localhost:8765 NODE, then open
  # http://localhost:8765/ in a local browser")]
pub struct Args {
    #[command(flatten)]
    run: trained_run::RunArgs,
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8765)]
    port: u16,
    /// Address to listen on; the default keeps the page to this machine (and SSH tunnels).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind((args.bind, args.port)).with_context(|| {
        format!(
            "cannot listen on port {} of {}: is it in use? Choose another with --port",
            args.port, args.bind
        )
    })?;
    let (run, pool) = args.run.open()?;
    let viewer = pool.install(|| Viewer::new(&args.run.output_directory, run.model, run.table, run.map))?;
    let address = listener.local_addr()?;
    let mut note =
        format!("cryomotion view: open http://{address}/ in a browser (Ctrl-C stops the server)\n");
    if args.bind.is_loopback() {
        note += &format!(
            "from another machine: ssh -L {port}:localhost:{port} THIS_HOST, then open http://localhost:{port}/\n",
            port = address.port()
        );
    }
    // the server outlives whoever reads its output: a closed stdout must not stop it
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(note.as_bytes()).and_then(|()| stdout.flush());
    let pool = Arc::new(pool);
    let viewer = Arc::new(viewer);
    serve(
        listener,
        Arc::new(move |request: &Request| -> Response { pool.install(|| viewer.handle(request)) }),
    );
    Ok(ExitCode::SUCCESS)
}
