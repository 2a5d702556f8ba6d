fn main() -> color_eyre::Result<()> {
    kockpit::cli::main()
}
