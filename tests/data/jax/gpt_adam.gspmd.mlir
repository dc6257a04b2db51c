module @jit_gpt_adam attributes {mhlo.num_partitions = 8 : i32, mhlo.num_replicas = 1 : i32} {
  func.func public @main(%arg0: tensor<32x16xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg1: tensor<16xf32> {mhlo.sharding = "{replicated}"}, %arg2: tensor<16x32xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg3: tensor<32x16xf32> {mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg4: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg5: tensor<4x4x16xf32> {mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg6: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg7: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg8: tensor<32x16xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg9: tensor<16xf32> {mhlo.sharding = "{replicated}"}, %arg10: tensor<16x32xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg11: tensor<32x16xf32> {mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg12: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg13: tensor<4x4x16xf32> {mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg14: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg15: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg16: tensor<32x16xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg17: tensor<16xf32> {mhlo.sharding = "{replicated}"}, %arg18: tensor<16x32xf32> {mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg19: tensor<32x16xf32> {mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg20: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg21: tensor<4x4x16xf32> {mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg22: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg23: tensor<16x4x4xf32> {mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, %arg24: tensor<4x8xi32> {mhlo.sharding = "{devices=[2,1,4]<=[8] last_tile_dim_replicate}"}, %arg25: tensor<4x8xi32> {mhlo.sharding = "{devices=[2,1,4]<=[8] last_tile_dim_replicate}"}) -> (tensor<f32> {jax.result_info = "result[0]", mhlo.sharding = "{replicated}"}, tensor<32x16xf32> {jax.result_info = "result[1]['emb']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16xf32> {jax.result_info = "result[1]['g']", mhlo.sharding = "{replicated}"}, tensor<16x32xf32> {jax.result_info = "result[1]['w1']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<32x16xf32> {jax.result_info = "result[1]['w2']", mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[1]['wk']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<4x4x16xf32> {jax.result_info = "result[1]['wo']", mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[1]['wq']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[1]['wv']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<32x16xf32> {jax.result_info = "result[2]['emb']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16xf32> {jax.result_info = "result[2]['g']", mhlo.sharding = "{replicated}"}, tensor<16x32xf32> {jax.result_info = "result[2]['w1']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<32x16xf32> {jax.result_info = "result[2]['w2']", mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[2]['wk']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<4x4x16xf32> {jax.result_info = "result[2]['wo']", mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[2]['wq']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[2]['wv']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<32x16xf32> {jax.result_info = "result[3]['emb']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16xf32> {jax.result_info = "result[3]['g']", mhlo.sharding = "{replicated}"}, tensor<16x32xf32> {jax.result_info = "result[3]['w1']", mhlo.sharding = "{devices=[1,4,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<32x16xf32> {jax.result_info = "result[3]['w2']", mhlo.sharding = "{devices=[4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[3]['wk']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<4x4x16xf32> {jax.result_info = "result[3]['wo']", mhlo.sharding = "{devices=[4,1,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[3]['wq']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}, tensor<16x4x4xf32> {jax.result_info = "result[3]['wv']", mhlo.sharding = "{devices=[1,4,1,2]<=[2,4]T(1,0) last_tile_dim_replicate}"}) {
    %c = stablehlo.constant dense<0> : tensor<i32>
    %0 = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<i32>) -> tensor<4x8xi32>
    %1 = stablehlo.compare LT, %arg24, %0, SIGNED : (tensor<4x8xi32>, tensor<4x8xi32>) -> tensor<4x8xi1>
    %c_0 = stablehlo.constant dense<32> : tensor<i32>
    %2 = stablehlo.broadcast_in_dim %c_0, dims = [] : (tensor<i32>) -> tensor<4x8xi32>
    %3 = stablehlo.add %arg24, %2 : tensor<4x8xi32>
    %4 = stablehlo.select %1, %3, %arg24 : tensor<4x8xi1>, tensor<4x8xi32>
    %5 = stablehlo.broadcast_in_dim %4, dims = [0, 1] : (tensor<4x8xi32>) -> tensor<4x8x1xi32>
    %6 = "stablehlo.gather"(%arg0, %5) <{dimension_numbers = #stablehlo.gather<offset_dims = [2], collapsed_slice_dims = [0], start_index_map = [0], index_vector_dim = 2>, indices_are_sorted = false, slice_sizes = array<i64: 1, 16>}> : (tensor<32x16xf32>, tensor<4x8x1xi32>) -> tensor<4x8x16xf32>
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %7 = stablehlo.reduce(%6 init: %cst) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %8 = stablehlo.broadcast_in_dim %7, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_1 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %9 = stablehlo.broadcast_in_dim %cst_1, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %10 = stablehlo.divide %8, %9 : tensor<4x8x1xf32>
    %11 = stablehlo.broadcast_in_dim %10, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %12 = stablehlo.subtract %6, %11 : tensor<4x8x16xf32>
    %13 = stablehlo.multiply %12, %12 : tensor<4x8x16xf32>
    %cst_2 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %14 = stablehlo.broadcast_in_dim %cst_2, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %15 = stablehlo.multiply %14, %12 : tensor<4x8x16xf32>
    %cst_3 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %16 = stablehlo.reduce(%13 init: %cst_3) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %17 = stablehlo.broadcast_in_dim %16, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_4 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %18 = stablehlo.broadcast_in_dim %cst_4, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %19 = stablehlo.divide %17, %18 : tensor<4x8x1xf32>
    %20 = stablehlo.broadcast_in_dim %10, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %21 = stablehlo.subtract %6, %20 : tensor<4x8x16xf32>
    %cst_5 = stablehlo.constant dense<9.99999974E-6> : tensor<f32>
    %22 = stablehlo.broadcast_in_dim %cst_5, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %23 = stablehlo.add %19, %22 : tensor<4x8x1xf32>
    %24 = stablehlo.rsqrt %23 : tensor<4x8x1xf32>
    %25 = stablehlo.divide %24, %23 : tensor<4x8x1xf32>
    %cst_6 = stablehlo.constant dense<-5.000000e-01> : tensor<f32>
    %26 = stablehlo.broadcast_in_dim %cst_6, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %27 = stablehlo.multiply %26, %25 : tensor<4x8x1xf32>
    %28 = stablehlo.broadcast_in_dim %24, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %29 = stablehlo.multiply %21, %28 : tensor<4x8x16xf32>
    %30 = stablehlo.broadcast_in_dim %arg1, dims = [2] : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %31 = stablehlo.broadcast_in_dim %30, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %32 = stablehlo.multiply %29, %31 : tensor<4x8x16xf32>
    %cst_7 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %33 = stablehlo.broadcast_in_dim %cst_7, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %34 = stablehlo.add %32, %33 : tensor<4x8x16xf32>
    %35 = stablehlo.dot_general %34, %arg6, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x4x4xf32>) -> tensor<4x8x4x4xf32>
    %36 = stablehlo.dot_general %34, %arg4, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x4x4xf32>) -> tensor<4x8x4x4xf32>
    %37 = stablehlo.dot_general %34, %arg7, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x4x4xf32>) -> tensor<4x8x4x4xf32>
    %38 = stablehlo.broadcast_in_dim %36, dims = [0, 1, 2, 4] : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x1x4xf32>
    %39 = stablehlo.reshape %38 : (tensor<4x8x4x1x4xf32>) -> tensor<4x8x4x4xf32>
    %40 = stablehlo.broadcast_in_dim %37, dims = [0, 1, 2, 4] : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x1x4xf32>
    %41 = stablehlo.reshape %40 : (tensor<4x8x4x1x4xf32>) -> tensor<4x8x4x4xf32>
    %42 = stablehlo.dot_general %35, %39, batching_dims = [0, 2] x [0, 2], contracting_dims = [3] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x8xf32>
    %cst_8 = stablehlo.constant dense<4.000000e+00> : tensor<f32>
    %43 = stablehlo.sqrt %cst_8 : tensor<f32>
    %44 = stablehlo.convert %43 : tensor<f32>
    %45 = stablehlo.broadcast_in_dim %44, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %46 = stablehlo.divide %42, %45 : tensor<4x4x8x8xf32>
    %c_9 = stablehlo.constant dense<true> : tensor<i1>
    %47 = stablehlo.broadcast_in_dim %c_9, dims = [] : (tensor<i1>) -> tensor<8x8xi1>
    %48 = call @tril(%47) : (tensor<8x8xi1>) -> tensor<8x8xi1>
    %cst_10 = stablehlo.constant dense<-1.000000e+09> : tensor<f32>
    %49:2 = call @_where(%48, %46, %cst_10) : (tensor<8x8xi1>, tensor<4x4x8x8xf32>, tensor<f32>) -> (tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>)
    %cst_11 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %50 = stablehlo.reduce(%49#0 init: %cst_11) applies stablehlo.maximum across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %cst_12 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %51 = stablehlo.broadcast_in_dim %cst_12, dims = [] : (tensor<f32>) -> tensor<4x4x8xf32>
    %52 = stablehlo.maximum %51, %50 : tensor<4x4x8xf32>
    %53 = stablehlo.broadcast_in_dim %52, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %54 = stablehlo.broadcast_in_dim %53, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %55 = stablehlo.subtract %49#0, %54 : tensor<4x4x8x8xf32>
    %56 = stablehlo.exponential %55 : tensor<4x4x8x8xf32>
    %cst_13 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %57 = stablehlo.reduce(%56 init: %cst_13) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %58 = stablehlo.broadcast_in_dim %57, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %59 = stablehlo.broadcast_in_dim %58, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %60 = stablehlo.divide %56, %59 : tensor<4x4x8x8xf32>
    %61 = stablehlo.multiply %58, %58 : tensor<4x4x8x1xf32>
    %cst_14 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %62 = stablehlo.broadcast_in_dim %cst_14, dims = [] : (tensor<f32>) -> tensor<4x4x8x1xf32>
    %63 = stablehlo.divide %62, %61 : tensor<4x4x8x1xf32>
    %64 = stablehlo.dot_general %41, %60, batching_dims = [0, 2] x [0, 1], contracting_dims = [1] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x4x8x8xf32>) -> tensor<4x4x4x8xf32>
    %65 = stablehlo.transpose %64, dims = [0, 3, 1, 2] : (tensor<4x4x4x8xf32>) -> tensor<4x8x4x4xf32>
    %66 = stablehlo.dot_general %65, %arg5, contracting_dims = [2, 3] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x4x16xf32>) -> tensor<4x8x16xf32>
    %67 = stablehlo.add %6, %66 : tensor<4x8x16xf32>
    %cst_15 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %68 = stablehlo.reduce(%67 init: %cst_15) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %69 = stablehlo.broadcast_in_dim %68, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_16 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %70 = stablehlo.broadcast_in_dim %cst_16, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %71 = stablehlo.divide %69, %70 : tensor<4x8x1xf32>
    %72 = stablehlo.broadcast_in_dim %71, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %73 = stablehlo.subtract %67, %72 : tensor<4x8x16xf32>
    %74 = stablehlo.multiply %73, %73 : tensor<4x8x16xf32>
    %cst_17 = stablehlo.constant dense<2.000000e+00> : tensor<f32>
    %75 = stablehlo.broadcast_in_dim %cst_17, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %76 = stablehlo.multiply %75, %73 : tensor<4x8x16xf32>
    %cst_18 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %77 = stablehlo.reduce(%74 init: %cst_18) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %78 = stablehlo.broadcast_in_dim %77, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %cst_19 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %79 = stablehlo.broadcast_in_dim %cst_19, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %80 = stablehlo.divide %78, %79 : tensor<4x8x1xf32>
    %81 = stablehlo.broadcast_in_dim %71, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %82 = stablehlo.subtract %67, %81 : tensor<4x8x16xf32>
    %cst_20 = stablehlo.constant dense<9.99999974E-6> : tensor<f32>
    %83 = stablehlo.broadcast_in_dim %cst_20, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %84 = stablehlo.add %80, %83 : tensor<4x8x1xf32>
    %85 = stablehlo.rsqrt %84 : tensor<4x8x1xf32>
    %86 = stablehlo.divide %85, %84 : tensor<4x8x1xf32>
    %cst_21 = stablehlo.constant dense<-5.000000e-01> : tensor<f32>
    %87 = stablehlo.broadcast_in_dim %cst_21, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %88 = stablehlo.multiply %87, %86 : tensor<4x8x1xf32>
    %89 = stablehlo.broadcast_in_dim %85, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %90 = stablehlo.multiply %82, %89 : tensor<4x8x16xf32>
    %91 = stablehlo.broadcast_in_dim %arg1, dims = [2] : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %92 = stablehlo.broadcast_in_dim %91, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %93 = stablehlo.multiply %90, %92 : tensor<4x8x16xf32>
    %cst_22 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %94 = stablehlo.broadcast_in_dim %cst_22, dims = [] : (tensor<f32>) -> tensor<4x8x16xf32>
    %95 = stablehlo.add %93, %94 : tensor<4x8x16xf32>
    %96 = stablehlo.dot_general %95, %arg2, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    %97 = stablehlo.multiply %96, %96 : tensor<4x8x32xf32>
    %98 = stablehlo.multiply %97, %96 : tensor<4x8x32xf32>
    %99 = stablehlo.multiply %96, %96 : tensor<4x8x32xf32>
    %cst_23 = stablehlo.constant dense<3.000000e+00> : tensor<f32>
    %100 = stablehlo.broadcast_in_dim %cst_23, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %101 = stablehlo.multiply %100, %99 : tensor<4x8x32xf32>
    %cst_24 = stablehlo.constant dense<4.471500e-02> : tensor<f32>
    %102 = stablehlo.broadcast_in_dim %cst_24, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %103 = stablehlo.multiply %102, %98 : tensor<4x8x32xf32>
    %104 = stablehlo.add %96, %103 : tensor<4x8x32xf32>
    %cst_25 = stablehlo.constant dense<0.797884583> : tensor<f32>
    %105 = stablehlo.broadcast_in_dim %cst_25, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %106 = stablehlo.multiply %105, %104 : tensor<4x8x32xf32>
    %107 = stablehlo.tanh %106 : tensor<4x8x32xf32>
    %cst_26 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %108 = stablehlo.broadcast_in_dim %cst_26, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %109 = stablehlo.subtract %108, %107 : tensor<4x8x32xf32>
    %cst_27 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %110 = stablehlo.broadcast_in_dim %cst_27, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %111 = stablehlo.add %110, %107 : tensor<4x8x32xf32>
    %cst_28 = stablehlo.constant dense<5.000000e-01> : tensor<f32>
    %112 = stablehlo.broadcast_in_dim %cst_28, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %113 = stablehlo.multiply %112, %111 : tensor<4x8x32xf32>
    %114 = stablehlo.multiply %96, %113 : tensor<4x8x32xf32>
    %115 = stablehlo.dot_general %114, %arg3, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<32x16xf32>) -> tensor<4x8x16xf32>
    %116 = stablehlo.add %67, %115 : tensor<4x8x16xf32>
    %117 = stablehlo.transpose %arg0, dims = [1, 0] : (tensor<32x16xf32>) -> tensor<16x32xf32>
    %118 = stablehlo.dot_general %116, %117, contracting_dims = [2] x [0], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<16x32xf32>) -> tensor<4x8x32xf32>
    %119:3 = call @log_softmax(%118) : (tensor<4x8x32xf32>) -> (tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x1xf32>)
    %120 = stablehlo.broadcast_in_dim %arg25, dims = [0, 1] : (tensor<4x8xi32>) -> tensor<4x8x1xi32>
    %121:2 = call @take_along_axis(%119#0, %120) : (tensor<4x8x32xf32>, tensor<4x8x1xi32>) -> (tensor<4x8x1xf32>, tensor<4x8x1x1xi32>)
    %cst_29 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %122 = stablehlo.reduce(%121#0 init: %cst_29) applies stablehlo.add across dimensions = [0, 1, 2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<f32>
    %cst_30 = stablehlo.constant dense<3.200000e+01> : tensor<f32>
    %123 = stablehlo.divide %122, %cst_30 : tensor<f32>
    %124 = stablehlo.negate %123 : tensor<f32>
    %cst_31 = stablehlo.constant dense<1.000000e+00> : tensor<f32>
    %125 = stablehlo.negate %cst_31 : tensor<f32>
    %cst_32 = stablehlo.constant dense<3.200000e+01> : tensor<f32>
    %126 = stablehlo.divide %125, %cst_32 : tensor<f32>
    %127 = stablehlo.broadcast_in_dim %126, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %128 = call @take_along_axis_0(%121#1, %127) : (tensor<4x8x1x1xi32>, tensor<4x8x1xf32>) -> tensor<4x8x32xf32>
    %129 = call @log_softmax_1(%119#1, %119#2, %128) : (tensor<4x8x32xf32>, tensor<4x8x1xf32>, tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %130 = stablehlo.dot_general %129, %116, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %131 = stablehlo.transpose %130, dims = [1, 0] : (tensor<32x16xf32>) -> tensor<16x32xf32>
    %132 = stablehlo.dot_general %129, %117, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
    %133 = stablehlo.transpose %131, dims = [1, 0] : (tensor<16x32xf32>) -> tensor<32x16xf32>
    %134 = stablehlo.dot_general %132, %114, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x8x32xf32>) -> tensor<16x32xf32>
    %135 = stablehlo.transpose %134, dims = [1, 0] : (tensor<16x32xf32>) -> tensor<32x16xf32>
    %136 = stablehlo.dot_general %132, %arg3, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32>
    %137 = stablehlo.multiply %96, %136 : tensor<4x8x32xf32>
    %138 = stablehlo.multiply %136, %113 : tensor<4x8x32xf32>
    %cst_33 = stablehlo.constant dense<5.000000e-01> : tensor<f32>
    %139 = stablehlo.broadcast_in_dim %cst_33, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %140 = stablehlo.multiply %139, %137 : tensor<4x8x32xf32>
    %141 = stablehlo.multiply %140, %109 : tensor<4x8x32xf32>
    %142 = stablehlo.multiply %141, %107 : tensor<4x8x32xf32>
    %143 = stablehlo.add %141, %142 : tensor<4x8x32xf32>
    %cst_34 = stablehlo.constant dense<0.797884583> : tensor<f32>
    %144 = stablehlo.broadcast_in_dim %cst_34, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %145 = stablehlo.multiply %144, %143 : tensor<4x8x32xf32>
    %146 = stablehlo.add %138, %145 : tensor<4x8x32xf32>
    %cst_35 = stablehlo.constant dense<4.471500e-02> : tensor<f32>
    %147 = stablehlo.broadcast_in_dim %cst_35, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %148 = stablehlo.multiply %147, %145 : tensor<4x8x32xf32>
    %149 = stablehlo.multiply %148, %101 : tensor<4x8x32xf32>
    %150 = stablehlo.add %146, %149 : tensor<4x8x32xf32>
    %151 = stablehlo.dot_general %150, %95, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %152 = stablehlo.transpose %151, dims = [1, 0] : (tensor<32x16xf32>) -> tensor<16x32xf32>
    %153 = stablehlo.dot_general %150, %arg2, contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
    %154 = stablehlo.multiply %90, %153 : tensor<4x8x16xf32>
    %cst_36 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %155 = stablehlo.reduce(%154 init: %cst_36) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<16xf32>
    %156 = stablehlo.reshape %155 : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %157 = stablehlo.broadcast_in_dim %91, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %158 = stablehlo.multiply %153, %157 : tensor<4x8x16xf32>
    %cst_37 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %159 = stablehlo.reduce(%156 init: %cst_37) applies stablehlo.add across dimensions = [0, 1] : (tensor<1x1x16xf32>, tensor<f32>) -> tensor<16xf32>
    %160 = stablehlo.multiply %82, %158 : tensor<4x8x16xf32>
    %cst_38 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %161 = stablehlo.reduce(%160 init: %cst_38) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %162 = stablehlo.reshape %161 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %163 = stablehlo.broadcast_in_dim %85, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %164 = stablehlo.multiply %158, %163 : tensor<4x8x16xf32>
    %165 = stablehlo.multiply %162, %88 : tensor<4x8x1xf32>
    %166 = stablehlo.negate %164 : tensor<4x8x16xf32>
    %cst_39 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %167 = stablehlo.reduce(%166 init: %cst_39) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %168 = stablehlo.reshape %167 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %169 = stablehlo.add %132, %164 : tensor<4x8x16xf32>
    %cst_40 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %170 = stablehlo.broadcast_in_dim %cst_40, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %171 = stablehlo.divide %165, %170 : tensor<4x8x1xf32>
    %cst_41 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %172 = stablehlo.reduce(%171 init: %cst_41) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %173 = stablehlo.broadcast_in_dim %172, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x16xf32>
    %174 = stablehlo.multiply %173, %76 : tensor<4x8x16xf32>
    %175 = stablehlo.negate %174 : tensor<4x8x16xf32>
    %cst_42 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %176 = stablehlo.reduce(%175 init: %cst_42) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %177 = stablehlo.reshape %176 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %178 = stablehlo.add %169, %174 : tensor<4x8x16xf32>
    %179 = stablehlo.add %168, %177 : tensor<4x8x1xf32>
    %cst_43 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %180 = stablehlo.broadcast_in_dim %cst_43, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %181 = stablehlo.divide %179, %180 : tensor<4x8x1xf32>
    %cst_44 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %182 = stablehlo.reduce(%181 init: %cst_44) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %183 = stablehlo.broadcast_in_dim %182, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x16xf32>
    %184 = stablehlo.add %178, %183 : tensor<4x8x16xf32>
    %185 = stablehlo.dot_general %184, %65, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x8x4x4xf32>) -> tensor<16x4x4xf32>
    %186 = stablehlo.transpose %185, dims = [1, 2, 0] : (tensor<16x4x4xf32>) -> tensor<4x4x16xf32>
    %187 = stablehlo.dot_general %184, %arg5, contracting_dims = [2] x [2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x16xf32>, tensor<4x4x16xf32>) -> tensor<4x8x4x4xf32>
    %188 = stablehlo.transpose %187, dims = [0, 2, 3, 1] : (tensor<4x8x4x4xf32>) -> tensor<4x4x4x8xf32>
    %189 = stablehlo.dot_general %188, %41, batching_dims = [0, 1] x [0, 2], contracting_dims = [2] x [3], precision = [DEFAULT, DEFAULT] : (tensor<4x4x4x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x8xf32>
    %190 = stablehlo.dot_general %188, %60, batching_dims = [0, 1] x [0, 1], contracting_dims = [3] x [2], precision = [DEFAULT, DEFAULT] : (tensor<4x4x4x8xf32>, tensor<4x4x8x8xf32>) -> tensor<4x4x4x8xf32>
    %191 = stablehlo.transpose %190, dims = [0, 3, 1, 2] : (tensor<4x4x4x8xf32>) -> tensor<4x8x4x4xf32>
    %192 = stablehlo.broadcast_in_dim %63, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %193 = stablehlo.multiply %189, %192 : tensor<4x4x8x8xf32>
    %194 = stablehlo.multiply %193, %56 : tensor<4x4x8x8xf32>
    %cst_45 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %195 = stablehlo.reduce(%194 init: %cst_45) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x8xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %196 = stablehlo.reshape %195 : (tensor<4x4x8xf32>) -> tensor<4x4x8x1xf32>
    %197 = stablehlo.negate %196 : tensor<4x4x8x1xf32>
    %198 = stablehlo.broadcast_in_dim %58, dims = [0, 1, 2, 3] : (tensor<4x4x8x1xf32>) -> tensor<4x4x8x8xf32>
    %199 = stablehlo.divide %189, %198 : tensor<4x4x8x8xf32>
    %cst_46 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %200 = stablehlo.reduce(%197 init: %cst_46) applies stablehlo.add across dimensions = [3] : (tensor<4x4x8x1xf32>, tensor<f32>) -> tensor<4x4x8xf32>
    %201 = stablehlo.broadcast_in_dim %200, dims = [0, 1, 2] : (tensor<4x4x8xf32>) -> tensor<4x4x8x8xf32>
    %202 = stablehlo.add %199, %201 : tensor<4x4x8x8xf32>
    %203 = stablehlo.multiply %202, %56 : tensor<4x4x8x8xf32>
    %204 = call @_where_2(%49#1, %203) : (tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>) -> tensor<4x4x8x8xf32>
    %205 = stablehlo.broadcast_in_dim %44, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %206 = stablehlo.divide %204, %205 : tensor<4x4x8x8xf32>
    %207 = stablehlo.dot_general %206, %35, batching_dims = [0, 1] x [0, 2], contracting_dims = [2] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x4x8x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x4xf32>
    %208 = stablehlo.transpose %207, dims = [0, 2, 1, 3] : (tensor<4x4x8x4xf32>) -> tensor<4x8x4x4xf32>
    %209 = stablehlo.dot_general %206, %39, batching_dims = [0, 1] x [0, 2], contracting_dims = [3] x [1], precision = [DEFAULT, DEFAULT] : (tensor<4x4x8x8xf32>, tensor<4x8x4x4xf32>) -> tensor<4x4x8x4xf32>
    %210 = stablehlo.transpose %209, dims = [0, 2, 1, 3] : (tensor<4x4x8x4xf32>) -> tensor<4x8x4x4xf32>
    %211 = stablehlo.reshape %191 : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x1x4xf32>
    %cst_47 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %212 = stablehlo.reduce(%211 init: %cst_47) applies stablehlo.add across dimensions = [3] : (tensor<4x8x4x1x4xf32>, tensor<f32>) -> tensor<4x8x4x4xf32>
    %213 = stablehlo.reshape %208 : (tensor<4x8x4x4xf32>) -> tensor<4x8x4x1x4xf32>
    %cst_48 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %214 = stablehlo.reduce(%213 init: %cst_48) applies stablehlo.add across dimensions = [3] : (tensor<4x8x4x1x4xf32>, tensor<f32>) -> tensor<4x8x4x4xf32>
    %215 = stablehlo.dot_general %212, %34, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x16xf32>) -> tensor<4x4x16xf32>
    %216 = stablehlo.transpose %215, dims = [2, 0, 1] : (tensor<4x4x16xf32>) -> tensor<16x4x4xf32>
    %217 = stablehlo.dot_general %212, %arg7, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<16x4x4xf32>) -> tensor<4x8x16xf32>
    %218 = stablehlo.dot_general %214, %34, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x16xf32>) -> tensor<4x4x16xf32>
    %219 = stablehlo.transpose %218, dims = [2, 0, 1] : (tensor<4x4x16xf32>) -> tensor<16x4x4xf32>
    %220 = stablehlo.dot_general %214, %arg4, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<16x4x4xf32>) -> tensor<4x8x16xf32>
    %221 = stablehlo.add %217, %220 : tensor<4x8x16xf32>
    %222 = stablehlo.dot_general %210, %34, contracting_dims = [0, 1] x [0, 1], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<4x8x16xf32>) -> tensor<4x4x16xf32>
    %223 = stablehlo.transpose %222, dims = [2, 0, 1] : (tensor<4x4x16xf32>) -> tensor<16x4x4xf32>
    %224 = stablehlo.dot_general %210, %arg6, contracting_dims = [2, 3] x [1, 2], precision = [DEFAULT, DEFAULT] : (tensor<4x8x4x4xf32>, tensor<16x4x4xf32>) -> tensor<4x8x16xf32>
    %225 = stablehlo.add %221, %224 : tensor<4x8x16xf32>
    %226 = stablehlo.multiply %29, %225 : tensor<4x8x16xf32>
    %cst_49 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %227 = stablehlo.reduce(%226 init: %cst_49) applies stablehlo.add across dimensions = [0, 1] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<16xf32>
    %228 = stablehlo.reshape %227 : (tensor<16xf32>) -> tensor<1x1x16xf32>
    %229 = stablehlo.broadcast_in_dim %30, dims = [0, 1, 2] : (tensor<1x1x16xf32>) -> tensor<4x8x16xf32>
    %230 = stablehlo.multiply %225, %229 : tensor<4x8x16xf32>
    %cst_50 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %231 = stablehlo.reduce(%228 init: %cst_50) applies stablehlo.add across dimensions = [0, 1] : (tensor<1x1x16xf32>, tensor<f32>) -> tensor<16xf32>
    %232 = stablehlo.add %159, %231 : tensor<16xf32>
    %233 = stablehlo.multiply %21, %230 : tensor<4x8x16xf32>
    %cst_51 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %234 = stablehlo.reduce(%233 init: %cst_51) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %235 = stablehlo.reshape %234 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %236 = stablehlo.broadcast_in_dim %24, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x16xf32>
    %237 = stablehlo.multiply %230, %236 : tensor<4x8x16xf32>
    %238 = stablehlo.multiply %235, %27 : tensor<4x8x1xf32>
    %239 = stablehlo.negate %237 : tensor<4x8x16xf32>
    %cst_52 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %240 = stablehlo.reduce(%239 init: %cst_52) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %241 = stablehlo.reshape %240 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %242 = stablehlo.add %184, %237 : tensor<4x8x16xf32>
    %cst_53 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %243 = stablehlo.broadcast_in_dim %cst_53, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %244 = stablehlo.divide %238, %243 : tensor<4x8x1xf32>
    %cst_54 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %245 = stablehlo.reduce(%244 init: %cst_54) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %246 = stablehlo.broadcast_in_dim %245, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x16xf32>
    %247 = stablehlo.multiply %246, %15 : tensor<4x8x16xf32>
    %248 = stablehlo.negate %247 : tensor<4x8x16xf32>
    %cst_55 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %249 = stablehlo.reduce(%248 init: %cst_55) applies stablehlo.add across dimensions = [2] : (tensor<4x8x16xf32>, tensor<f32>) -> tensor<4x8xf32>
    %250 = stablehlo.reshape %249 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %251 = stablehlo.add %242, %247 : tensor<4x8x16xf32>
    %252 = stablehlo.add %241, %250 : tensor<4x8x1xf32>
    %cst_56 = stablehlo.constant dense<1.600000e+01> : tensor<f32>
    %253 = stablehlo.broadcast_in_dim %cst_56, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %254 = stablehlo.divide %252, %253 : tensor<4x8x1xf32>
    %cst_57 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %255 = stablehlo.reduce(%254 init: %cst_57) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %256 = stablehlo.broadcast_in_dim %255, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x16xf32>
    %257 = stablehlo.add %251, %256 : tensor<4x8x16xf32>
    %cst_58 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %258 = stablehlo.broadcast_in_dim %cst_58, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %259 = "stablehlo.scatter"(%258, %5, %257) <{indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<update_window_dims = [2], inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 2>, unique_indices = false}> ({
    ^bb0(%arg26: tensor<f32>, %arg27: tensor<f32>):
      %437 = stablehlo.add %arg26, %arg27 : tensor<f32>
      stablehlo.return %437 : tensor<f32>
    }) : (tensor<32x16xf32>, tensor<4x8x1xi32>, tensor<4x8x16xf32>) -> tensor<32x16xf32>
    %260 = stablehlo.add %133, %259 : tensor<32x16xf32>
    %cst_59 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %261 = stablehlo.broadcast_in_dim %cst_59, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %262 = stablehlo.multiply %261, %arg8 : tensor<32x16xf32>
    %cst_60 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %263 = stablehlo.broadcast_in_dim %cst_60, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %264 = stablehlo.multiply %263, %260 : tensor<32x16xf32>
    %265 = stablehlo.add %262, %264 : tensor<32x16xf32>
    %cst_61 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %266 = stablehlo.broadcast_in_dim %cst_61, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %267 = stablehlo.multiply %266, %arg9 : tensor<16xf32>
    %cst_62 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %268 = stablehlo.broadcast_in_dim %cst_62, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %269 = stablehlo.multiply %268, %232 : tensor<16xf32>
    %270 = stablehlo.add %267, %269 : tensor<16xf32>
    %cst_63 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %271 = stablehlo.broadcast_in_dim %cst_63, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %272 = stablehlo.multiply %271, %arg10 : tensor<16x32xf32>
    %cst_64 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %273 = stablehlo.broadcast_in_dim %cst_64, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %274 = stablehlo.multiply %273, %152 : tensor<16x32xf32>
    %275 = stablehlo.add %272, %274 : tensor<16x32xf32>
    %cst_65 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %276 = stablehlo.broadcast_in_dim %cst_65, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %277 = stablehlo.multiply %276, %arg11 : tensor<32x16xf32>
    %cst_66 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %278 = stablehlo.broadcast_in_dim %cst_66, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %279 = stablehlo.multiply %278, %135 : tensor<32x16xf32>
    %280 = stablehlo.add %277, %279 : tensor<32x16xf32>
    %cst_67 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %281 = stablehlo.broadcast_in_dim %cst_67, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %282 = stablehlo.multiply %281, %arg12 : tensor<16x4x4xf32>
    %cst_68 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %283 = stablehlo.broadcast_in_dim %cst_68, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %284 = stablehlo.multiply %283, %219 : tensor<16x4x4xf32>
    %285 = stablehlo.add %282, %284 : tensor<16x4x4xf32>
    %cst_69 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %286 = stablehlo.broadcast_in_dim %cst_69, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %287 = stablehlo.multiply %286, %arg13 : tensor<4x4x16xf32>
    %cst_70 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %288 = stablehlo.broadcast_in_dim %cst_70, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %289 = stablehlo.multiply %288, %186 : tensor<4x4x16xf32>
    %290 = stablehlo.add %287, %289 : tensor<4x4x16xf32>
    %cst_71 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %291 = stablehlo.broadcast_in_dim %cst_71, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %292 = stablehlo.multiply %291, %arg14 : tensor<16x4x4xf32>
    %cst_72 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %293 = stablehlo.broadcast_in_dim %cst_72, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %294 = stablehlo.multiply %293, %223 : tensor<16x4x4xf32>
    %295 = stablehlo.add %292, %294 : tensor<16x4x4xf32>
    %cst_73 = stablehlo.constant dense<0.899999976> : tensor<f32>
    %296 = stablehlo.broadcast_in_dim %cst_73, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %297 = stablehlo.multiply %296, %arg15 : tensor<16x4x4xf32>
    %cst_74 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %298 = stablehlo.broadcast_in_dim %cst_74, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %299 = stablehlo.multiply %298, %216 : tensor<16x4x4xf32>
    %300 = stablehlo.add %297, %299 : tensor<16x4x4xf32>
    %cst_75 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %301 = stablehlo.broadcast_in_dim %cst_75, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %302 = stablehlo.multiply %301, %arg16 : tensor<32x16xf32>
    %cst_76 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %303 = stablehlo.broadcast_in_dim %cst_76, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %304 = stablehlo.multiply %303, %260 : tensor<32x16xf32>
    %305 = stablehlo.multiply %304, %260 : tensor<32x16xf32>
    %306 = stablehlo.add %302, %305 : tensor<32x16xf32>
    %cst_77 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %307 = stablehlo.broadcast_in_dim %cst_77, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %308 = stablehlo.multiply %307, %arg17 : tensor<16xf32>
    %cst_78 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %309 = stablehlo.broadcast_in_dim %cst_78, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %310 = stablehlo.multiply %309, %232 : tensor<16xf32>
    %311 = stablehlo.multiply %310, %232 : tensor<16xf32>
    %312 = stablehlo.add %308, %311 : tensor<16xf32>
    %cst_79 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %313 = stablehlo.broadcast_in_dim %cst_79, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %314 = stablehlo.multiply %313, %arg18 : tensor<16x32xf32>
    %cst_80 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %315 = stablehlo.broadcast_in_dim %cst_80, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %316 = stablehlo.multiply %315, %152 : tensor<16x32xf32>
    %317 = stablehlo.multiply %316, %152 : tensor<16x32xf32>
    %318 = stablehlo.add %314, %317 : tensor<16x32xf32>
    %cst_81 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %319 = stablehlo.broadcast_in_dim %cst_81, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %320 = stablehlo.multiply %319, %arg19 : tensor<32x16xf32>
    %cst_82 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %321 = stablehlo.broadcast_in_dim %cst_82, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %322 = stablehlo.multiply %321, %135 : tensor<32x16xf32>
    %323 = stablehlo.multiply %322, %135 : tensor<32x16xf32>
    %324 = stablehlo.add %320, %323 : tensor<32x16xf32>
    %cst_83 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %325 = stablehlo.broadcast_in_dim %cst_83, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %326 = stablehlo.multiply %325, %arg20 : tensor<16x4x4xf32>
    %cst_84 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %327 = stablehlo.broadcast_in_dim %cst_84, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %328 = stablehlo.multiply %327, %219 : tensor<16x4x4xf32>
    %329 = stablehlo.multiply %328, %219 : tensor<16x4x4xf32>
    %330 = stablehlo.add %326, %329 : tensor<16x4x4xf32>
    %cst_85 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %331 = stablehlo.broadcast_in_dim %cst_85, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %332 = stablehlo.multiply %331, %arg21 : tensor<4x4x16xf32>
    %cst_86 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %333 = stablehlo.broadcast_in_dim %cst_86, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %334 = stablehlo.multiply %333, %186 : tensor<4x4x16xf32>
    %335 = stablehlo.multiply %334, %186 : tensor<4x4x16xf32>
    %336 = stablehlo.add %332, %335 : tensor<4x4x16xf32>
    %cst_87 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %337 = stablehlo.broadcast_in_dim %cst_87, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %338 = stablehlo.multiply %337, %arg22 : tensor<16x4x4xf32>
    %cst_88 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %339 = stablehlo.broadcast_in_dim %cst_88, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %340 = stablehlo.multiply %339, %223 : tensor<16x4x4xf32>
    %341 = stablehlo.multiply %340, %223 : tensor<16x4x4xf32>
    %342 = stablehlo.add %338, %341 : tensor<16x4x4xf32>
    %cst_89 = stablehlo.constant dense<9.990000e-01> : tensor<f32>
    %343 = stablehlo.broadcast_in_dim %cst_89, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %344 = stablehlo.multiply %343, %arg23 : tensor<16x4x4xf32>
    %cst_90 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %345 = stablehlo.broadcast_in_dim %cst_90, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %346 = stablehlo.multiply %345, %216 : tensor<16x4x4xf32>
    %347 = stablehlo.multiply %346, %216 : tensor<16x4x4xf32>
    %348 = stablehlo.add %344, %347 : tensor<16x4x4xf32>
    %cst_91 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %349 = stablehlo.broadcast_in_dim %cst_91, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %350 = stablehlo.divide %265, %349 : tensor<32x16xf32>
    %cst_92 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %351 = stablehlo.broadcast_in_dim %cst_92, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %352 = stablehlo.multiply %351, %350 : tensor<32x16xf32>
    %cst_93 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %353 = stablehlo.broadcast_in_dim %cst_93, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %354 = stablehlo.divide %306, %353 : tensor<32x16xf32>
    %355 = stablehlo.sqrt %354 : tensor<32x16xf32>
    %cst_94 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %356 = stablehlo.broadcast_in_dim %cst_94, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %357 = stablehlo.add %355, %356 : tensor<32x16xf32>
    %358 = stablehlo.divide %352, %357 : tensor<32x16xf32>
    %359 = stablehlo.subtract %arg0, %358 : tensor<32x16xf32>
    %cst_95 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %360 = stablehlo.broadcast_in_dim %cst_95, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %361 = stablehlo.divide %270, %360 : tensor<16xf32>
    %cst_96 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %362 = stablehlo.broadcast_in_dim %cst_96, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %363 = stablehlo.multiply %362, %361 : tensor<16xf32>
    %cst_97 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %364 = stablehlo.broadcast_in_dim %cst_97, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %365 = stablehlo.divide %312, %364 : tensor<16xf32>
    %366 = stablehlo.sqrt %365 : tensor<16xf32>
    %cst_98 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %367 = stablehlo.broadcast_in_dim %cst_98, dims = [] : (tensor<f32>) -> tensor<16xf32>
    %368 = stablehlo.add %366, %367 : tensor<16xf32>
    %369 = stablehlo.divide %363, %368 : tensor<16xf32>
    %370 = stablehlo.subtract %arg1, %369 : tensor<16xf32>
    %cst_99 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %371 = stablehlo.broadcast_in_dim %cst_99, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %372 = stablehlo.divide %275, %371 : tensor<16x32xf32>
    %cst_100 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %373 = stablehlo.broadcast_in_dim %cst_100, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %374 = stablehlo.multiply %373, %372 : tensor<16x32xf32>
    %cst_101 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %375 = stablehlo.broadcast_in_dim %cst_101, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %376 = stablehlo.divide %318, %375 : tensor<16x32xf32>
    %377 = stablehlo.sqrt %376 : tensor<16x32xf32>
    %cst_102 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %378 = stablehlo.broadcast_in_dim %cst_102, dims = [] : (tensor<f32>) -> tensor<16x32xf32>
    %379 = stablehlo.add %377, %378 : tensor<16x32xf32>
    %380 = stablehlo.divide %374, %379 : tensor<16x32xf32>
    %381 = stablehlo.subtract %arg2, %380 : tensor<16x32xf32>
    %cst_103 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %382 = stablehlo.broadcast_in_dim %cst_103, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %383 = stablehlo.divide %280, %382 : tensor<32x16xf32>
    %cst_104 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %384 = stablehlo.broadcast_in_dim %cst_104, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %385 = stablehlo.multiply %384, %383 : tensor<32x16xf32>
    %cst_105 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %386 = stablehlo.broadcast_in_dim %cst_105, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %387 = stablehlo.divide %324, %386 : tensor<32x16xf32>
    %388 = stablehlo.sqrt %387 : tensor<32x16xf32>
    %cst_106 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %389 = stablehlo.broadcast_in_dim %cst_106, dims = [] : (tensor<f32>) -> tensor<32x16xf32>
    %390 = stablehlo.add %388, %389 : tensor<32x16xf32>
    %391 = stablehlo.divide %385, %390 : tensor<32x16xf32>
    %392 = stablehlo.subtract %arg3, %391 : tensor<32x16xf32>
    %cst_107 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %393 = stablehlo.broadcast_in_dim %cst_107, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %394 = stablehlo.divide %285, %393 : tensor<16x4x4xf32>
    %cst_108 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %395 = stablehlo.broadcast_in_dim %cst_108, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %396 = stablehlo.multiply %395, %394 : tensor<16x4x4xf32>
    %cst_109 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %397 = stablehlo.broadcast_in_dim %cst_109, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %398 = stablehlo.divide %330, %397 : tensor<16x4x4xf32>
    %399 = stablehlo.sqrt %398 : tensor<16x4x4xf32>
    %cst_110 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %400 = stablehlo.broadcast_in_dim %cst_110, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %401 = stablehlo.add %399, %400 : tensor<16x4x4xf32>
    %402 = stablehlo.divide %396, %401 : tensor<16x4x4xf32>
    %403 = stablehlo.subtract %arg4, %402 : tensor<16x4x4xf32>
    %cst_111 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %404 = stablehlo.broadcast_in_dim %cst_111, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %405 = stablehlo.divide %290, %404 : tensor<4x4x16xf32>
    %cst_112 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %406 = stablehlo.broadcast_in_dim %cst_112, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %407 = stablehlo.multiply %406, %405 : tensor<4x4x16xf32>
    %cst_113 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %408 = stablehlo.broadcast_in_dim %cst_113, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %409 = stablehlo.divide %336, %408 : tensor<4x4x16xf32>
    %410 = stablehlo.sqrt %409 : tensor<4x4x16xf32>
    %cst_114 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %411 = stablehlo.broadcast_in_dim %cst_114, dims = [] : (tensor<f32>) -> tensor<4x4x16xf32>
    %412 = stablehlo.add %410, %411 : tensor<4x4x16xf32>
    %413 = stablehlo.divide %407, %412 : tensor<4x4x16xf32>
    %414 = stablehlo.subtract %arg5, %413 : tensor<4x4x16xf32>
    %cst_115 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %415 = stablehlo.broadcast_in_dim %cst_115, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %416 = stablehlo.divide %295, %415 : tensor<16x4x4xf32>
    %cst_116 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %417 = stablehlo.broadcast_in_dim %cst_116, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %418 = stablehlo.multiply %417, %416 : tensor<16x4x4xf32>
    %cst_117 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %419 = stablehlo.broadcast_in_dim %cst_117, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %420 = stablehlo.divide %342, %419 : tensor<16x4x4xf32>
    %421 = stablehlo.sqrt %420 : tensor<16x4x4xf32>
    %cst_118 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %422 = stablehlo.broadcast_in_dim %cst_118, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %423 = stablehlo.add %421, %422 : tensor<16x4x4xf32>
    %424 = stablehlo.divide %418, %423 : tensor<16x4x4xf32>
    %425 = stablehlo.subtract %arg6, %424 : tensor<16x4x4xf32>
    %cst_119 = stablehlo.constant dense<1.000000e-01> : tensor<f32>
    %426 = stablehlo.broadcast_in_dim %cst_119, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %427 = stablehlo.divide %300, %426 : tensor<16x4x4xf32>
    %cst_120 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %428 = stablehlo.broadcast_in_dim %cst_120, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %429 = stablehlo.multiply %428, %427 : tensor<16x4x4xf32>
    %cst_121 = stablehlo.constant dense<1.000000e-03> : tensor<f32>
    %430 = stablehlo.broadcast_in_dim %cst_121, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %431 = stablehlo.divide %348, %430 : tensor<16x4x4xf32>
    %432 = stablehlo.sqrt %431 : tensor<16x4x4xf32>
    %cst_122 = stablehlo.constant dense<9.99999993E-9> : tensor<f32>
    %433 = stablehlo.broadcast_in_dim %cst_122, dims = [] : (tensor<f32>) -> tensor<16x4x4xf32>
    %434 = stablehlo.add %432, %433 : tensor<16x4x4xf32>
    %435 = stablehlo.divide %429, %434 : tensor<16x4x4xf32>
    %436 = stablehlo.subtract %arg7, %435 : tensor<16x4x4xf32>
    return %124, %359, %370, %381, %392, %403, %414, %425, %436, %265, %270, %275, %280, %285, %290, %295, %300, %306, %312, %318, %324, %330, %336, %342, %348 : tensor<f32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x32xf32>, tensor<32x16xf32>, tensor<16x4x4xf32>, tensor<4x4x16xf32>, tensor<16x4x4xf32>, tensor<16x4x4xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x32xf32>, tensor<32x16xf32>, tensor<16x4x4xf32>, tensor<4x4x16xf32>, tensor<16x4x4xf32>, tensor<16x4x4xf32>, tensor<32x16xf32>, tensor<16xf32>, tensor<16x32xf32>, tensor<32x16xf32>, tensor<16x4x4xf32>, tensor<4x4x16xf32>, tensor<16x4x4xf32>, tensor<16x4x4xf32>
  }
  func.func private @tril(%arg0: tensor<8x8xi1>) -> tensor<8x8xi1> {
    %0 = stablehlo.iota dim = 0 : tensor<8x8xi32>
    %c = stablehlo.constant dense<0> : tensor<i32>
    %1 = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<i32>) -> tensor<8x8xi32>
    %2 = stablehlo.add %0, %1 : tensor<8x8xi32>
    %3 = stablehlo.iota dim = 1 : tensor<8x8xi32>
    %4 = stablehlo.compare GE, %2, %3, SIGNED : (tensor<8x8xi32>, tensor<8x8xi32>) -> tensor<8x8xi1>
    %c_0 = stablehlo.constant dense<false> : tensor<i1>
    %5 = stablehlo.broadcast_in_dim %c_0, dims = [] : (tensor<i1>) -> tensor<8x8xi1>
    %6 = stablehlo.select %4, %arg0, %5 : tensor<8x8xi1>, tensor<8x8xi1>
    return %6 : tensor<8x8xi1>
  }
  func.func private @_where(%arg0: tensor<8x8xi1>, %arg1: tensor<4x4x8x8xf32>, %arg2: tensor<f32>) -> (tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>) {
    %0 = stablehlo.convert %arg2 : tensor<f32>
    %1 = stablehlo.broadcast_in_dim %arg0, dims = [2, 3] : (tensor<8x8xi1>) -> tensor<4x4x8x8xi1>
    %2 = stablehlo.broadcast_in_dim %0, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %3 = stablehlo.select %1, %arg1, %2 : tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>
    return %3, %1 : tensor<4x4x8x8xf32>, tensor<4x4x8x8xi1>
  }
  func.func private @log_softmax(%arg0: tensor<4x8x32xf32>) -> (tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x1xf32>) {
    %cst = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %0 = stablehlo.reduce(%arg0 init: %cst) applies stablehlo.maximum across dimensions = [2] : (tensor<4x8x32xf32>, tensor<f32>) -> tensor<4x8xf32>
    %cst_0 = stablehlo.constant dense<0xFF800000> : tensor<f32>
    %1 = stablehlo.broadcast_in_dim %cst_0, dims = [] : (tensor<f32>) -> tensor<4x8xf32>
    %2 = stablehlo.maximum %1, %0 : tensor<4x8xf32>
    %3 = stablehlo.broadcast_in_dim %2, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %4 = stablehlo.broadcast_in_dim %3, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x32xf32>
    %5 = stablehlo.subtract %arg0, %4 : tensor<4x8x32xf32>
    %6 = stablehlo.exponential %5 : tensor<4x8x32xf32>
    %cst_1 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %7 = stablehlo.reduce(%6 init: %cst_1) applies stablehlo.add across dimensions = [2] : (tensor<4x8x32xf32>, tensor<f32>) -> tensor<4x8xf32>
    %8 = stablehlo.broadcast_in_dim %7, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %9 = stablehlo.log %8 : tensor<4x8x1xf32>
    %10 = stablehlo.broadcast_in_dim %9, dims = [0, 1, 2] : (tensor<4x8x1xf32>) -> tensor<4x8x32xf32>
    %11 = stablehlo.subtract %5, %10 : tensor<4x8x32xf32>
    return %11, %6, %8 : tensor<4x8x32xf32>, tensor<4x8x32xf32>, tensor<4x8x1xf32>
  }
  func.func private @take_along_axis(%arg0: tensor<4x8x32xf32>, %arg1: tensor<4x8x1xi32>) -> (tensor<4x8x1xf32>, tensor<4x8x1x1xi32>) {
    %c = stablehlo.constant dense<0> : tensor<i32>
    %0 = stablehlo.broadcast_in_dim %c, dims = [] : (tensor<i32>) -> tensor<4x8x1xi32>
    %1 = stablehlo.compare LT, %arg1, %0, SIGNED : (tensor<4x8x1xi32>, tensor<4x8x1xi32>) -> tensor<4x8x1xi1>
    %c_0 = stablehlo.constant dense<32> : tensor<i32>
    %2 = stablehlo.broadcast_in_dim %c_0, dims = [] : (tensor<i32>) -> tensor<4x8x1xi32>
    %3 = stablehlo.add %arg1, %2 : tensor<4x8x1xi32>
    %4 = stablehlo.select %1, %3, %arg1 : tensor<4x8x1xi1>, tensor<4x8x1xi32>
    %5 = stablehlo.reshape %4 : (tensor<4x8x1xi32>) -> tensor<4x8x1x1xi32>
    %c_1 = stablehlo.constant dense<31> : tensor<1xi32>
    %c_2 = stablehlo.constant dense<0> : tensor<i32>
    %6 = stablehlo.broadcast_in_dim %c_2, dims = [] : (tensor<i32>) -> tensor<4x8x1x1xi32>
    %7 = stablehlo.compare GE, %5, %6, SIGNED : (tensor<4x8x1x1xi32>, tensor<4x8x1x1xi32>) -> tensor<4x8x1x1xi1>
    %8 = stablehlo.broadcast_in_dim %c_1, dims = [3] : (tensor<1xi32>) -> tensor<1x1x1x1xi32>
    %9 = stablehlo.broadcast_in_dim %8, dims = [0, 1, 2, 3] : (tensor<1x1x1x1xi32>) -> tensor<4x8x1x1xi32>
    %10 = stablehlo.compare LE, %5, %9, SIGNED : (tensor<4x8x1x1xi32>, tensor<4x8x1x1xi32>) -> tensor<4x8x1x1xi1>
    %11 = stablehlo.and %7, %10 : tensor<4x8x1x1xi1>
    %c_3 = stablehlo.constant dense<true> : tensor<i1>
    %12 = stablehlo.reduce(%11 init: %c_3) applies stablehlo.and across dimensions = [3] : (tensor<4x8x1x1xi1>, tensor<i1>) -> tensor<4x8x1xi1>
    %13 = "stablehlo.gather"(%arg0, %5) <{dimension_numbers = #stablehlo.gather<collapsed_slice_dims = [2], operand_batching_dims = [0, 1], start_indices_batching_dims = [0, 1], start_index_map = [2], index_vector_dim = 3>, indices_are_sorted = false, slice_sizes = array<i64: 1, 1, 1>}> : (tensor<4x8x32xf32>, tensor<4x8x1x1xi32>) -> tensor<4x8x1xf32>
    %cst = stablehlo.constant dense<0x7FC00000> : tensor<f32>
    %14 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4x8x1xf32>
    %15 = stablehlo.select %12, %13, %14 : tensor<4x8x1xi1>, tensor<4x8x1xf32>
    return %15, %5 : tensor<4x8x1xf32>, tensor<4x8x1x1xi32>
  }
  func.func private @take_along_axis_0(%arg0: tensor<4x8x1x1xi32>, %arg1: tensor<4x8x1xf32>) -> tensor<4x8x32xf32> {
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %0 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4x8x32xf32>
    %1 = "stablehlo.scatter"(%0, %arg0, %arg1) <{indices_are_sorted = false, scatter_dimension_numbers = #stablehlo.scatter<inserted_window_dims = [2], input_batching_dims = [0, 1], scatter_indices_batching_dims = [0, 1], scatter_dims_to_operand_dims = [2], index_vector_dim = 3>, unique_indices = false}> ({
    ^bb0(%arg2: tensor<f32>, %arg3: tensor<f32>):
      %2 = stablehlo.add %arg2, %arg3 : tensor<f32>
      stablehlo.return %2 : tensor<f32>
    }) : (tensor<4x8x32xf32>, tensor<4x8x1x1xi32>, tensor<4x8x1xf32>) -> tensor<4x8x32xf32>
    return %1 : tensor<4x8x32xf32>
  }
  func.func private @log_softmax_1(%arg0: tensor<4x8x32xf32>, %arg1: tensor<4x8x1xf32>, %arg2: tensor<4x8x32xf32>) -> tensor<4x8x32xf32> {
    %0 = stablehlo.negate %arg2 : tensor<4x8x32xf32>
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %1 = stablehlo.reduce(%0 init: %cst) applies stablehlo.add across dimensions = [2] : (tensor<4x8x32xf32>, tensor<f32>) -> tensor<4x8xf32>
    %2 = stablehlo.reshape %1 : (tensor<4x8xf32>) -> tensor<4x8x1xf32>
    %3 = stablehlo.divide %2, %arg1 : tensor<4x8x1xf32>
    %cst_0 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %4 = stablehlo.reduce(%3 init: %cst_0) applies stablehlo.add across dimensions = [2] : (tensor<4x8x1xf32>, tensor<f32>) -> tensor<4x8xf32>
    %5 = stablehlo.broadcast_in_dim %4, dims = [0, 1] : (tensor<4x8xf32>) -> tensor<4x8x32xf32>
    %6 = stablehlo.multiply %5, %arg0 : tensor<4x8x32xf32>
    %7 = stablehlo.add %arg2, %6 : tensor<4x8x32xf32>
    return %7 : tensor<4x8x32xf32>
  }
  func.func private @_where_2(%arg0: tensor<4x4x8x8xi1>, %arg1: tensor<4x4x8x8xf32>) -> tensor<4x4x8x8xf32> {
    %cst = stablehlo.constant dense<0.000000e+00> : tensor<f32>
    %0 = stablehlo.broadcast_in_dim %cst, dims = [] : (tensor<f32>) -> tensor<4x4x8x8xf32>
    %1 = stablehlo.select %arg0, %arg1, %0 : tensor<4x4x8x8xi1>, tensor<4x4x8x8xf32>
    return %1 : tensor<4x4x8x8xf32>
  }
}
