import ArgumentParser
import Shared

struct SER: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ser",
        abstract: "Speech emotion recognition: train and explain models on CPU clusters with MPI.",
        discussion: """
        The pipeline: audio → log-mel features → Gaussian data selection → model → training → \
        checkpoints → explanations → report. Every command runs as one process or under \
        `mpirun -np N ser …`; the work is then split between the ranks.

        Start with `ser info` to see the machine and the MPI world.
        """,
        subcommands: [Info.self, Demo.self, Synth.self, Preprocess.self, Store.self, Train.self, Supervise.self,
                      Explain.self, Report.self, Embed.self, Experiment.self, Bench.self]
    )
}
