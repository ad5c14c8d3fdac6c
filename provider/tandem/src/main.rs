//! terraform-provider-tandem: launched by Terraform, never by hand.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

/// Full registry address, printed in `--debug` reattach mode.
const PROVIDER_ADDRESS: &str = "registry.terraform.io/tandem/tandem";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let code = tfplugin6::run(
        tandem_provider::TandemProvider,
        PROVIDER_ADDRESS,
        "provider.terraform-provider-tandem",
    )
    .await;
    // Exit at once: lingering runtime tasks (open streams from Terraform)
    // must not delay the exit Terraform waits for after Shutdown.
    std::process::exit(code);
}
