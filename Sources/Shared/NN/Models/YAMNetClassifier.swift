import Foundation

/// YAMNet as Google published it: the trunk, global average pooling to the 1024-d embedding,
/// and the 521 AudioSet classes (`logits/kernel` 1024 × 521, `logits/bias`), scored with a
/// sigmoid. Loads shared/weights/yamnet/yamnet.safetensors as it is (names without prefix).
public final class YAMNetClassifier<S: Real> {
    public let params: Parameters<S>
    public let arena = Arena<S>()
    let trunk: YAMNetTrunk
    let config: ModelConfig
    public static var classCount: Int { 521 }

    public init(width: Double = 1) throws {
        config = ModelConfig(architecture: .yamnetOnly, classes: 2, width: width)
        try config.validate()
        trunk = YAMNetTrunk(config, prefix: "")
        var layout = ParameterLayout()
        trunk.declare(&layout)
        let emb = trunk.output.cout
        layout.add("logits/kernel", [emb, YAMNetClassifier.classCount], .heNormal, fanIn: emb)
        layout.add("logits/bias", [YAMNetClassifier.classCount], .zeros)
        params = Parameters(layout: layout)
    }

    /// Loads a YAMNet safetensors file (all 110 tensors must be present with their shapes).
    public func load(path: String) throws {
        try params.load(try SafeTensors.read(path: path), source: path)
    }

    public var embeddingSize: Int { trunk.output.cout }

    /// Inference on `batch` patches (B, 96, 64, 1): embeddings (B × 1024) and scores (B × 521).
    public func run(_ x: UnsafePointer<S>, batch: Int) -> (embeddings: [S], scores: [S]) {
        let parts = max(1, min(ComputeThreads.current, batch))
        let chunks = (0..<parts).map { ($0 * batch / parts) ..< (($0 + 1) * batch / parts) }
        let need = trunk.workspaceCount(batch: chunks.map(\.count).max()!, elementSize: MemoryLayout<S>.stride)
        for w in 0..<ComputeThreads.current { _ = arena.get("workspace\(w)", need) }
        let input = arena.get("x", batch * config.frames * config.bands)
        input.update(from: x, count: batch * config.frames * config.bands)
        let ctx = PassContext(params: params, arena: arena, statistics: LocalStatistics(), config: config,
                              statisticsBatch: batch, chunks: chunks)
        let map = trunk.forward(input, batch: batch, bn: .moving, update: false, ctx)
        let e = embeddingSize, k = YAMNetClassifier.classCount
        let emb = arena.get("embedding", batch * e)
        globalAvgPool(map, emb, batch: batch, positions: trunk.output.outPositions, c: e)
        let logits = arena.get("logits", batch * k)
        denseForward(emb, params.value("logits/kernel"), params.value("logits/bias"), logits, batch: batch, inputs: e, outputs: k, relu: false)
        let scores = (0..<batch * k).map { S(1 / (1 + Foundation.exp(-Double(logits[$0])))) }
        return (Array(UnsafeBufferPointer(start: emb, count: batch * e)), scores)
    }
}
