import MisalignCore
print("bench")
if CommandLine.arguments.dropFirst().first == "tokenizer" { try runTokenizerBenchmark(Array(CommandLine.arguments.dropFirst(2))) }
