import MisalignCore
print("bench")
if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == "changepoint" { try runChangePointBenchmark(Array(CommandLine.arguments.dropFirst(2))) }
