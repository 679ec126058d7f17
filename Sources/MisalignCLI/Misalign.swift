import ArgumentParser
import MisalignCore

@main
struct Misalign: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "misalign", abstract: "x",
        subcommands: [TokenizeCommand.self])
}
