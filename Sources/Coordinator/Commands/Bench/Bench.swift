import ArgumentParser

/// `ser bench …`: speed figures, measured the way BENCHMARKS.md records them.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the speed of a stage (figures for BENCHMARKS.md).",
        discussion: "Each subcommand prints what it ran, on which machine, and the result. Run on a quiet machine; repeat and compare ratios from one run.",
        subcommands: [BenchFrontend.self, BenchTrain.self, BenchInfer.self, BenchScaling.self, BenchCheckpoint.self, BenchExplain.self]
    )
}
