import Foundation

/// A convolution's tensors and shape. `name` is the tensor prefix in our safetensors files.
struct ConvLayer: Sendable {
    let name: String
    let g: ConvGeometry
    let hasBias: Bool
    var kernel: String { name + "/kernel" }
    var bias: String { name + "/bias" }

    func declare(_ layout: inout ParameterLayout) {
        layout.add(kernel, [g.kh, g.kw, g.cin, g.cout], .heNormal, fanIn: g.kh * g.kw * g.cin)
        if hasBias { layout.add(bias, [g.cout], .zeros) }
    }
}

/// VGGish (Hershey et al. 2017, tensorflow/models research/audioset/vggish) up to its last pool.
///
/// Tensor names are those of our safetensors files and shared/golden; Google's vggish_slim
/// checkpoint calls them `vggish/<layer>/weights` and `vggish/<layer>/biases` (same HWIO layout).
///
///     x (B, 96, 64, 1)
///     conv1   3×3 → 64,  ReLU, maxpool 2×2 → (48, 32, 64)      vggish/conv1
///     conv2   3×3 → 128, ReLU, maxpool     → A (24, 16, 128)   vggish/conv2
///     conv3_1 3×3 → 256, ReLU                                  vggish/conv3/conv3_1
///     conv3_2 3×3 → 256, ReLU, maxpool     → B (12, 8, 256)    vggish/conv3/conv3_2
///     conv4_1 3×3 → 512, ReLU                                  vggish/conv4/conv4_1
///     conv4_2 3×3 → 512, ReLU, maxpool     → C (6, 4, 512)     vggish/conv4/conv4_2
///
/// The original 4096-4096-128 head (`vggish/fc1/fc1_1`, `fc1_2`, `fc2`) is `VGGishEmbedding`.
struct VGGishBranch: Sendable {
    let conv1, conv2, conv3_1, conv3_2, conv4_1, conv4_2: ConvLayer
    let h: Int, w: Int

    init(_ cfg: ModelConfig) {
        h = cfg.frames; w = cfg.bands
        let c64 = cfg.channels(64), c128 = cfg.channels(128), c256 = cfg.channels(256), c512 = cfg.channels(512)
        func conv(_ n: String, _ h: Int, _ w: Int, _ cin: Int, _ cout: Int) -> ConvLayer {
            ConvLayer(name: "vggish/" + n, g: ConvGeometry(h: h, w: w, cin: cin, cout: cout, kh: 3, kw: 3, stride: 1), hasBias: true)
        }
        conv1 = conv("conv1", h, w, 1, c64)
        conv2 = conv("conv2", h / 2, w / 2, c64, c128)
        conv3_1 = conv("conv3_1", h / 4, w / 4, c128, c256)
        conv3_2 = conv("conv3_2", h / 4, w / 4, c256, c256)
        conv4_1 = conv("conv4_1", h / 8, w / 8, c256, c512)
        conv4_2 = conv("conv4_2", h / 8, w / 8, c512, c512)
    }

    var convs: [ConvLayer] { [conv1, conv2, conv3_1, conv3_2, conv4_1, conv4_2] }
    /// Channels of the taps A, B, C.
    var tapA: Int { conv2.g.cout }
    var tapB: Int { conv3_2.g.cout }
    var tapC: Int { conv4_2.g.cout }

    func declare(_ layout: inout ParameterLayout) { for c in convs { c.declare(&layout) } }

    var flopsPerSample: Int { convs.reduce(0) { $0 + $1.g.flopsPerSample } }
}
