import Foundation

/// A batch norm without scale (Keras `BatchNormalization(center=True, scale=False, epsilon=1e-4)`,
/// as in YAMNet): `<name>/beta` is trained, `<name>/moving_mean` and `<name>/moving_variance`
/// are state.
struct BatchNormLayer: Sendable {
    let name: String
    let channels: Int
    var beta: String { name + "/beta" }
    var movingMean: String { name + "/moving_mean" }
    var movingVariance: String { name + "/moving_variance" }

    func declare(_ layout: inout ParameterLayout) {
        layout.add(beta, [channels], .zeros)
        layout.add(movingMean, [channels], .zeros, state: true)
        layout.add(movingVariance, [channels], .ones, state: true)
    }
}

/// One YAMNet layer: a convolution (regular or depthwise, no bias) followed by batch norm and ReLU.
struct YAMNetConv: Sendable {
    enum Kind: Sendable { case regular, depthwise }
    let kind: Kind
    let g: ConvGeometry
    /// Kernel tensor name, e.g. `yamnet/layer2/depthwise_conv/depthwise_kernel`.
    let kernel: String
    let bn: BatchNormLayer
    /// Key prefix for this layer's stored activations.
    let key: String

    func declare(_ layout: inout ParameterLayout) {
        switch kind {
        case .regular: layout.add(kernel, [g.kh, g.kw, g.cin, g.cout], .heNormal, fanIn: g.kh * g.kw * g.cin)
        case .depthwise: layout.add(kernel, [g.kh, g.kw, g.cin, 1], .heNormal, fanIn: g.kh * g.kw)
        }
        bn.declare(&layout)
    }

    var flopsPerSample: Int { kind == .regular ? g.flopsPerSample : 2 * g.outPositions * g.kh * g.kw * g.cin }
}

/// YAMNet (tensorflow/models research/audioset/yamnet): MobileNet v1 on 96×64 log-mel patches.
///
///     layer1      conv 3×3/2 → 32, BN, ReLU                  (48, 32, 32)   yamnet/layer1/conv
///     layer2..14  depthwise 3×3/s, BN, ReLU; pointwise 1×1, BN, ReLU
///                 (64,1) (128,2) (128,1) (256,2) (256,1) (512,2) (512,1)×5 (1024,2) (1024,1)
///                 → (3, 2, 1024)                                   yamnet/layerL/{depthwise,pointwise}_conv
///
/// Names are those of shared/weights/yamnet (the Keras layer names of yamnet.py), under the
/// `yamnet/` prefix. No convolution has a bias; batch norm has no scale. The stride sits on the
/// depthwise convolution. The classifier (global average pool, `logits` 1024 → 521) is
/// `YAMNetClassifier`.
struct YAMNetTrunk: Sendable {
    let layers: [YAMNetConv]

    static let blocks: [(channels: Int, stride: Int)] = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                                                         (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    init(_ cfg: ModelConfig, prefix: String = "yamnet/") {
        var h = cfg.frames, w = cfg.bands
        var layers: [YAMNetConv] = []
        let c32 = cfg.channels(32)
        let g1 = ConvGeometry(h: h, w: w, cin: 1, cout: c32, kh: 3, kw: 3, stride: 2)
        layers.append(YAMNetConv(kind: .regular, g: g1, kernel: prefix + "layer1/conv/kernel",
                                 bn: BatchNormLayer(name: prefix + "layer1/conv/bn", channels: c32), key: "y1"))
        h = g1.ho; w = g1.wo
        var cin = c32
        for (i, block) in YAMNetTrunk.blocks.enumerated() {
            let l = i + 2
            let cout = cfg.channels(block.channels)
            let gd = ConvGeometry(h: h, w: w, cin: cin, cout: cin, kh: 3, kw: 3, stride: block.stride)
            layers.append(YAMNetConv(kind: .depthwise, g: gd, kernel: prefix + "layer\(l)/depthwise_conv/depthwise_kernel",
                                     bn: BatchNormLayer(name: prefix + "layer\(l)/depthwise_conv/bn", channels: cin), key: "y\(l)d"))
            let gp = ConvGeometry(h: gd.ho, w: gd.wo, cin: cin, cout: cout, kh: 1, kw: 1, stride: 1)
            layers.append(YAMNetConv(kind: .regular, g: gp, kernel: prefix + "layer\(l)/pointwise_conv/kernel",
                                     bn: BatchNormLayer(name: prefix + "layer\(l)/pointwise_conv/bn", channels: cout), key: "y\(l)p"))
            h = gd.ho; w = gd.wo; cin = cout
        }
        self.layers = layers
    }

    func declare(_ layout: inout ParameterLayout) { for l in layers { l.declare(&layout) } }

    var output: ConvGeometry { layers.last!.g }
    var flopsPerSample: Int { layers.reduce(0) { $0 + $1.flopsPerSample } }
}

/// What a pass over one branch needs from the network that runs it.
struct PassContext<S: Real> {
    let params: Parameters<S>
    let arena: Arena<S>
    let statistics: StatisticsSync
    let config: ModelConfig
    /// Samples over which batch statistics are taken (the global batch in distributed training).
    let statisticsBatch: Int
    /// The pass's chunks of samples; a per-thread workspace is in the arena as "workspace<w>".
    let chunks: [Range<Int>]
    var profile: Profile? = nil
    /// The other branch's pieces, run while this branch's collectives are in flight.
    var overlap: OverlapWork? = nil

    @inline(__always)
    func timed<T>(_ name: String, _ body: () -> T) -> T {
        guard let profile else { return body() }
        return profile.measure(name, body)
    }

    /// Runs `body(samples, workspace)` for every chunk, chunks in parallel.
    @inline(__always)
    func perChunk(_ body: (Range<Int>, UnsafeMutablePointer<S>) -> Void) {
        let chunks = self.chunks, arena = self.arena
        ComputeThreads.parallelChunks(chunks.count) { i, w in body(chunks[i], arena.existing("workspace\(w)")) }
    }
}

extension YAMNetTrunk {
    /// x: (B, 96, 64, 1) → layer 14's map (B, 3, 2, 1024). Every layer's pre-norm output `h`,
    /// output `y`, mean and 1/σ stay in the arena for the backward pass.
    func forward<S: Real>(_ x: UnsafePointer<S>, batch: Int, bn: BatchNormMode, update: Bool, _ ctx: PassContext<S>) -> UnsafeMutablePointer<S> {
        var input = x
        for l in layers {
            let g = l.g
            let h = ctx.arena.get(l.key + "h", batch * g.outSize)
            let y = ctx.arena.get(l.key, batch * g.outSize)
            let k = ctx.params.value(l.kernel), src = input
            ctx.timed(l.kind == .regular ? "y fwd conv" : "y fwd depthwise") {
                ctx.perChunk { r, ws in
                    let xi = src + r.lowerBound * g.inSize, ho = h + r.lowerBound * g.outSize
                    switch l.kind {
                    case .regular: convForward(xi, k, nil, ho, batch: r.count, g, relu: false, workspace: ws)
                    case .depthwise: depthwiseForward(xi, k, ho, batch: r.count, g)
                    }
                }
            }
            ctx.timed("y fwd bn") { batchNormForward(l, h, y, batch: batch, mode: bn, update: update, ctx) }
            input = UnsafePointer(y)
        }
        return ctx.arena.existing(layers.last!.key)
    }

    /// Normalises h into y (with ReLU), storing the mean and 1/σ used.
    private func batchNormForward<S: Real>(_ l: YAMNetConv, _ h: UnsafePointer<S>, _ y: UnsafeMutablePointer<S>, batch: Int,
                                           mode: BatchNormMode, update: Bool, _ ctx: PassContext<S>) {
        let c = l.bn.channels, positions = l.g.outPositions, size = l.g.outSize
        let arena = ctx.arena, params = ctx.params
        let mean = arena.get(l.key + "mean", c), istd = arena.get(l.key + "istd", c)
        let eps = ctx.config.bnEpsilon
        switch mode {
        case .moving:
            let mm = params.value(l.bn.movingMean), mv = params.value(l.bn.movingVariance)
            for ch in 0..<c {
                mean[ch] = mm[ch]
                istd[ch] = S(1 / (Double(mv[ch]) + eps).squareRoot())
            }
        case .batch:
            let rows = arena.doubles(l.key + "rows", batch * 2 * c)
            ctx.perChunk { r, _ in
                bnSampleSumsAndSquares(h + r.lowerBound * size, batch: r.count, positions: positions, channels: c, rows + r.lowerBound * 2 * c)
            }
            let sums = ctx.statistics.globalColumnSums(rows, localBatch: batch, width: 2 * c) { arrived in ctx.overlap?.run(until: arrived) }
            bnTakeBatchStatistics(sums, channels: c, count: Double(ctx.statisticsBatch * positions), epsilon: eps,
                                  momentum: ctx.config.bnMomentum, update: update, mean: mean, invStd: istd,
                                  movingMean: params.value(l.bn.movingMean), movingVariance: params.value(l.bn.movingVariance))
        }
        let beta = params.value(l.bn.beta)
        ctx.perChunk { r, _ in
            let o = r.lowerBound * size
            bnApply(h + o, y + o, mean: mean, invStd: istd, gamma: nil, beta: beta, rows: r.count * positions, channels: c, relu: true)
        }
    }

    /// Backpropagates dTop (B, 3, 2, 1024) down the trunk; parameter gradients go to `sink`
    /// (nil: none), the input gradient (if asked) to the arena's `dxy`.
    func backward<S: Real>(_ dTop: UnsafeMutablePointer<S>, batch: Int, bn: BatchNormMode, sink: GradientSink<S>?,
                           inputGradient: Bool, _ ctx: PassContext<S>) {
        let arena = ctx.arena, params = ctx.params, layout = params.layout
        // Buffers are created before the parallel regions (the arena is not thread-safe).
        let largest = layers.map { $0.g.outSize }.max()!
        let dh = arena.get("dh", batch * largest)
        let ping = arena.get("ydA", batch * largest), pong = arena.get("ydB", batch * largest)
        let dxy = inputGradient ? arena.get("dxy", batch * layers[0].g.inSize) : nil
        let s1 = arena.get("s1", layers.map { $0.bn.channels }.max()!), s2 = arena.get("s2", layers.map { $0.bn.channels }.max()!)
        var dy = dTop
        // A layer's parameter gradients need only its dh and input, not the layer below: they are
        // computed while the layer below's batch-norm sums travel (software pipelining).
        var pendingGradients: (() -> Void)?
        func runPendingGradients() {
            pendingGradients?()
            pendingGradients = nil
        }
        for (i, l) in layers.enumerated().reversed() {
            let g = l.g, c = l.bn.channels, positions = g.outPositions, size = g.outSize
            let h = arena.existing(l.key + "h"), beta = params.value(l.bn.beta)
            let mean = arena.existing(l.key + "mean"), istd = arena.existing(l.key + "istd")
            let rows = arena.doubles(l.key + "brows", batch * 2 * c)
            let d = dy
            ctx.timed("y bwd bn") {
                ctx.perChunk { r, _ in
                    let o = r.lowerBound * size
                    bnReluBackwardSampleSums(d + o, h + o, mean: mean, invStd: istd, gamma: nil, beta: beta, batch: r.count, positions: positions,
                                             channels: c, rows + r.lowerBound * 2 * c)
                }
            }
            if bn == .batch {
                // The other branch's backward runs in fixed shares, one per batch norm, while the
                // sums travel: the same schedule on every rank. (Run only while waiting, as in the
                // forward pass, its pieces would have to be small: they are whole layers here.)
                let share = Double(layers.count - i) / Double(layers.count)
                let sums = ctx.statistics.globalColumnSums(rows, localBatch: batch, width: 2 * c) { _ in
                    runPendingGradients()
                    ctx.overlap?.runShare(upTo: share)
                }
                ctx.timed("y bwd bn") {
                    for ch in 0..<c { s1[ch] = S(sums[ch]); s2[ch] = S(sums[c + ch]) }
                    let n = ctx.statisticsBatch * positions
                    ctx.perChunk { r, _ in
                        let o = r.lowerBound * size
                        bnBackwardData(d + o, h + o, dh + o, mean: mean, invStd: istd, gamma: nil, sumDy: s1, sumDyXhat: s2,
                                       count: n, rows: r.count * positions, channels: c)
                    }
                }
            } else {
                runPendingGradients()
                ctx.timed("y bwd bn") {
                    ctx.perChunk { r, _ in
                        let o = r.lowerBound * size
                        bnBackwardDataFixed(d + o, dh + o, invStd: istd, gamma: nil, rows: r.count * positions, channels: c)
                    }
                }
            }
            let input: UnsafePointer<S> = i == 0 ? UnsafePointer(arena.existing("x")) : UnsafePointer(arena.existing(layers[i - 1].key))
            if let sink {
                pendingGradients = {
                    sink.accumulate(offset: layout.offsets[l.bn.beta]!, count: c) { r, _, out in
                        for ch in 0..<c {
                            var s = 0.0
                            for b in r { s += rows[b * 2 * c + ch] }
                            out[ch] = S(s)
                        }
                    }
                    ctx.timed(l.kind == .regular ? "y bwdW conv" : "y bwdW depthwise") {
                        sink.accumulate(offset: layout.offsets[l.kernel]!, count: layout.spec(l.kernel)!.count) { r, w, dw in
                            let xi = input + r.lowerBound * g.inSize, dho = dh + r.lowerBound * g.outSize
                            switch l.kind {
                            case .regular: convBackwardWeights(xi, dho, dw, nil, batch: r.count, g, workspace: arena.existing("workspace\(w)"))
                            case .depthwise: depthwiseBackwardWeights(xi, dho, dw, batch: r.count, g)
                            }
                        }
                    }
                }
            }
            if i == 0 && !inputGradient { break }
            let k = params.value(l.kernel)
            let dx = i == 0 ? dxy! : (i % 2 == 0 ? ping : pong)
            ctx.timed(l.kind == .regular ? "y bwdX conv" : "y bwdX depthwise") {
                ctx.perChunk { r, ws in
                    let dho = dh + r.lowerBound * g.outSize, dxo = dx + r.lowerBound * g.inSize
                    switch l.kind {
                    case .regular: convBackwardData(dho, k, dxo, batch: r.count, g, workspace: ws)
                    case .depthwise: depthwiseBackwardData(dho, k, dxo, batch: r.count, g)
                    }
                }
            }
            dy = dx
        }
        runPendingGradients()
    }

    /// Workspace elements the trunk's regular convolutions need.
    func workspaceCount(batch: Int, elementSize: Int) -> Int {
        layers.filter { $0.kind == .regular }.map { convWorkspaceCount($0.g, batch, elementSize) }.max() ?? 1
    }
}
