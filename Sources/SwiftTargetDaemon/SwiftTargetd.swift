import ArgumentParser

@main
struct SwiftTargetd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swift-targetd",
        abstract: "SwiftTarget: export files, sparse images and block devices as iSCSI logical units.",
        subcommands: [ServeCommand.self, RunCommand.self, ImportIETDCommand.self, WebPasswordCommand.self],
        defaultSubcommand: ServeCommand.self
    )
}
