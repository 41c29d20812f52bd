"""axolotl keys that newtune knows but does not implement yet.

A config that sets one of these to a real value is refused with "not supported yet", never ignored.
A null, false or empty value asks for nothing, so it is accepted: axolotl's example configs list
many keys with empty values.
"""

from __future__ import annotations

# Top-level keys of axolotl 0.21.0's config schema (and its bundled integrations' args) that newtune
# does not implement.
TOP_LEVEL = frozenset(
    """
    DEFAULT_JITTER_NOISE DEFAULT_NUM_EXPERTS DEFAULT_ROUTER_AUX_LOSS_COEF DEFAULT_ROUTER_INIT_RANGE
    DEFAULT_TOP_K accelerator_config adam_beta3 adam_epsilon2 added_tokens_overrides
    allow_manifest_mismatch answer_format api_key api_token_env api_url async_publish auto_find_batch_size
    autotune_cache_path autotune_neighborhood autotune_profiles axolotl_config_path backend balance_labels
    base_url batch_flattening batch_size bench_dataset bench_split bfloat16 brier_weight bucket
    canvas_prefix_ids carry center_rewards_coefficient chunked_cross_entropy
    chunked_cross_entropy_num_chunks cls_model_config codebook comet_api_key comet_experiment_config
    comet_experiment_key comet_mode comet_online comet_project_name comet_workspace context_parallel
    coreweave curriculum_sampling
    cut_cross_entropy_accum_c_fp32 cut_cross_entropy_c_grad_chunk_size
    dataset_keep_in_memory
    dataset_shard_idx dataset_shard_num ddp
    debug decontaminate deepcompile dense_mixer
    deployment_id device diffusion diffusion_decision diffusion_lm dion_lr dion_momentum dion_rank_fraction
    dion_rank_multiple_of disk_size do_bench_eval do_causal_lm_eval docker_auth
    dpo_ld_alpha dpo_padding_free
    dpo_use_liger_kernel dpo_use_weighting dry_run dsv4_bf16_all dsv4_fp4_grouped_mode dsv4_fp8_lora_kernel
    dsv4_fp8_nonexpert_mode dsv4_shared_mlp_lora_kernel dynamic_checkpoint eaft_alpha eaft_k
    ebft embedding_lr embedding_lr_scale embeddings_skip_upcast enabled env
    env_secret eval_causal_lm_metrics eval_on_start eval_sequence_len experimental_skip_move_to_device
    expert_backend expert_parallel_backend expert_parallel_dispatch_chunks
    expert_parallel_fallback_on_unsupported expert_parallel_num_nvl_bytes expert_parallel_num_rdma_bytes
    expert_parallel_save_dispatch expert_parallel_size expert_parallel_token_capacity export
    fa_varlen_kwargs_in_collator fix_untrained_tokens flash_attn_cross_entropy flash_attn_d512
    flash_attn_fuse_mlp flash_optimum float16 float32 fp32_norm_classes fp32_norms fp8_config
    free_update_policy freeze_mm_modules fsdp full_ce_weighting full_determinism
    future_timeout gateway_url gc_collect_steps gc_steps gemma4_fp8_nonexpert
    gemma4_nf4_nonexpert generate_samples generation_do_sample
    generation_max_new_tokens generation_prompt_ratio generation_temperature generation_top_k
    generation_top_p gpu_memory_limit gradio_max_new_tokens gradio_server_name gradio_server_port
    gradio_share gradio_temperature gradio_title greater_is_better grokfast_alpha grokfast_lamb
    hard_label_smoothing hatchery hf_mlflow_log_artifacts hub_model_id hub_revision
    hub_strategy image_cache_size image_registry image_resize_algorithm image_size
    is_falcon_derived_model is_llama_derived_model is_mistral_derived_model
    is_preprocess is_qwen_derived_model jagged_restart_anneal_steps jagged_restart_steps
    jagged_restart_warmup_steps kd_alpha kd_beta kd_ce_alpha kd_normalize_topk kd_online_server
    kd_online_server_base_url kd_online_timeout kd_online_topk kd_temperature kd_temperature_min kd_trainer
    kto_desirable_weight kto_undesirable_weight label_balance_window_optim_steps label_shuffle_prob
    label_softmax labels large_head_attention latent layer_offloading layout lisa_layers_attribute
    lisa_n_layers lisa_step_interval llmcompressor lm_eval_batch_size
    lm_eval_model lm_eval_post_train lm_eval_tasks load_balance load_best_model_at_end local_rank
    logging_nan_inf_filter lora_alpha_pattern lora_embedding_kernel lora_fp32_gradients lora_on_cpu
    lora_rank lora_rank_pattern loraplus_lr_embedding loraplus_lr_ratio loss_fn
    loss_fn_config loss_weight lr_div_factor lr_groups
    lr_scheduler_kwargs max_deltas max_examples_per_source max_image_size max_memory
    max_prompt_len max_questions_per_canvas max_sample_tokens max_shard_size mean_resizing_embeddings
    merge_lora merge_method metric_for_best_model mixlora_expert_lora_alpha
    mixlora_expert_lora_dropout mixlora_expert_lora_r mixlora_jitter_noise mixlora_num_experts
    mixlora_router_aux_loss_coef mixlora_router_init_range mixlora_top_k mixture mode model moe_bnb_fast
    moe_dequant_chunk_size moe_grouped_backend mora mora_type mount multipack_real_batches
    nemo_gym_auto_clone nemo_gym_auto_start nemo_gym_config_paths nemo_gym_datasets nemo_gym_dir
    nemo_gym_enabled nemo_gym_head_port nemo_gym_max_turns nemo_gym_model_name nemo_gym_multi_turn
    nemo_gym_run_timeout nemo_gym_server_timeout nemo_gym_verify_timeout nf4_backend nonexpert_quantization
    num_dataset_shards_to_save num_generation_samples num_labels num_samples num_slots nvfp4_merge_aware
    nvfp4_merge_aware_start_step optim_args optim_target_modules otel_metrics_host
    otel_metrics_port output overrides_of_model_config overrides_of_model_kwargs pad_to_multiple_of
    parent_id path_prefix peft peft_autocast_adapter_dtype peft_ensure_weight_tying peft_init_lora_weights
    peft_layer_replication peft_layers_pattern peft_layers_to_transform peft_trainable_token_indices
    per_batch_stratified pipeline platform ple_cpu_offload poll_interval pose_max_context_len
    pose_num_chunks pose_split_on_token_ids precompute_ref_log_probs premixed prepared_cache_verify
    preprocess_iterable preset pretrain_multipack_attn pretraining_sample_concatenation process_reward_model
    processor_kwargs processor_type profile profiler_steps profiler_steps_start project_id provider
    push_dataset_to_hub qgalore_cos_threshold qgalore_gamma_proj qgalore_proj_bits qgalore_proj_group_size
    qgalore_proj_quant qgalore_proj_type qgalore_queue_size qgalore_rank qgalore_scale
    qgalore_update_proj_gap qlora_sharded_model_loading quantization ray_num_workers ray_run_name
    read_fraction read_overflow_canvas_width recipe reinit_weights relora relora_cpu_offload
    relora_prune_method relora_prune_ratio resources_per_worker reward_funcs
    reward_model ring_impl ring_size role_boundaries rollouts rotate_method s3_endpoint_url
    s3_profile sample_num_slots sample_packing_bin_size sample_packing_eff_est sample_packing_group_size
    sample_packing_mp_start_method sample_packing_sequentially sample_temperature save_compressed
    save_first_step save_name_prefix save_safetensors scaling_softmax scaling_softmax_bias
    scaling_softmax_factor sdpa_varlen secret selective_checkpointing shard_in_collator show_context
    shrink_embeddings size source
    spectrum_model_name spectrum_top_fraction streaming streaming_multipack_buffer_size subnet_id
    swanlab_api_host swanlab_api_key swanlab_completion_log_interval swanlab_completion_max_buffer
    swanlab_description swanlab_experiment_name swanlab_lark_secret swanlab_lark_webhook_url
    swanlab_log_completions swanlab_log_model swanlab_mode swanlab_project swanlab_web_host
    swanlab_workspace sync_profiler_start_step sync_profiler_steps temperature
    timeout token_ids tokenizer_save_jinja_files
    tokenizer_use_mistral_common torch_compile_options torch_compile_regional torch_empty_cache_steps
    torchdistx_path total_num_tokens total_supervised_tokens trackio_project trackio_project_name
    trackio_run_name trackio_space_id train_attn train_mlp train_unembed trainer_cls trl type_of_model
    ulysses_size use_comet use_dft use_dsv4_kernels use_eaft use_glm_dsa_kernels
    use_mlflow use_mora use_onebitllms use_otel_metrics use_pose use_ray use_swanlab
    use_trackio use_wandb vllm volumes weights world_size
    """.split()
)

# Keys of axolotl's `datasets[]` entries that newtune does not implement.
DATASET = frozenset("input_format input_transform logprobs_field preprocess_shards temperature".split())


def asks_for_nothing(value: object) -> bool:
    """True for values that leave a feature off: null, false, empty string, list or mapping."""
    return value is None or value is False or value in ("", [], {})
