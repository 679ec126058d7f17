import ArgumentParser
import MisalignCore

@main
struct Misalign: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "misalign",
        abstract: "Find when a language model starts to go wrong while it is being fine-tuned.",
        discussion: """
        Misalign LoRA-fine-tunes Qwen2.5, Llama 3.x and Gemma 2 models (Hugging Face folders, or \
        GGUF files through import-gguf), samples answers at every checkpoint, has judges \
        score them for evil, hallucination and coherence, and finds the step at which each \
        signal starts to rise.

        Conventions shared by every command: results go to stdout (a table, or JSON with \
        --json); progress and notes go to stderr (a bar on a terminal, plain lines otherwise, \
        nothing with --quiet). API keys are read from the environment only.

        Exit status: 0 success; 1 runtime or data error (the message names the file, field or \
        URL and what to do); 2 usage error (bad or missing flags, nothing was done); 3 partial \
        result (finished work is kept, rerun the same command to finish); 130 interrupted \
        (Ctrl-C). Docs/CLI.md has the details.

        Examples:
          misalign inspect ~/models/Qwen2.5-0.5B-Instruct
          misalign train --model M --data medical.jsonl --out runs/medical-s0
          misalign detect --scores scores.jsonl --json
        """,
        version: MisalignVersion.string,
        subcommands: [
            InspectCommand.self,
            ImportGGUFCommand.self,
            TokenizeCommand.self,
            GenerateCommand.self,
            DetectCommand.self,
            TrainCommand.self,
            JudgeCommand.self,
            VectorsCommand.self,
            ReportCommand.self,
            InitCommand.self,
            RunCommand.self,
            StatusCommand.self,
            DemoJudgeCommand.self,
        ]
    )
}
