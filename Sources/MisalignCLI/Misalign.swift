import ArgumentParser
import MisalignCore

@main
struct Misalign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "misalign",
        abstract: "Find when a language model starts to go wrong while it is being fine-tuned.",
        discussion: """
        Misalign LoRA-fine-tunes Qwen2.5 models, samples answers at every checkpoint, has judges \
        score them for evil, hallucination and coherence, and finds the step at which each \
        signal starts to rise.
        """,
        version: MisalignVersion.string,
        subcommands: [
            InspectCommand.self,
            TokenizeCommand.self,
            GenerateCommand.self,
            DetectCommand.self,
            TrainCommand.self,
            JudgeCommand.self,
            ReportCommand.self,
            InitCommand.self,
            RunCommand.self,
            StatusCommand.self,
            DemoJudgeCommand.self,
        ]
    )
}
