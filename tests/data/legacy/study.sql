PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE studies (
	study_id INTEGER NOT NULL, 
	study_name VARCHAR(512) NOT NULL, 
	PRIMARY KEY (study_id)
);
INSERT INTO studies VALUES(1,'legacy');
CREATE TABLE version_info (
	version_info_id INTEGER NOT NULL, 
	schema_version INTEGER, 
	library_version VARCHAR(256), 
	PRIMARY KEY (version_info_id), 
	CHECK (version_info_id=1)
);
INSERT INTO version_info VALUES(1,12,'5.0.0');
CREATE TABLE study_directions (
	study_direction_id INTEGER NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	study_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	PRIMARY KEY (study_direction_id), 
	UNIQUE (study_id, objective), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_directions VALUES(1,'MINIMIZE',1,0);
CREATE TABLE study_user_attributes (
	study_user_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_user_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_user_attributes VALUES(1,1,'spec','"legacy"');
INSERT INTO study_user_attributes VALUES(2,1,'spec_hash','"931def2756e51830ea737ebd7e876df70bcb12e4bc5f6998deda20c4d665a316"');
INSERT INTO study_user_attributes VALUES(3,1,'objective','"localisation"');
INSERT INTO study_user_attributes VALUES(4,1,'description','"written by main at 097f5d4 for the legacy-loading tests"');
CREATE TABLE study_system_attributes (
	study_system_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_system_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_system_attributes VALUES(1,1,'spec','{"path": "legacy.toml", "table": {"study": {"objective": "localisation", "n_trials": 3, "health_threshold": 0.0, "description": "written by main at 097f5d4 for the legacy-loading tests"}, "data": {"n_train": 128, "n_val": 64}, "train": {"epochs": 2, "threads": 1}, "localisation": {"n_scenes": 32, "every": 1}, "fixed": {"arch": "mlp", "width": 16, "depth": 1, "batch_size": 64, "blend": "adaptive", "subspace_scale": "log", "lam_peak": 0.02}, "search": {"lr": {"type": "float", "low": 0.001, "high": 0.01, "log": true}, "beta": {"type": "float", "low": 0.2, "high": 0.4}}, "sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}}}');
INSERT INTO study_system_attributes VALUES(2,1,'study:metric_names','["angle_eff_db"]');
INSERT INTO study_system_attributes VALUES(3,1,'dashboard:plot_data:prune-reasons:0','"{\"data\":[{\"text\":[\"0\",\"0\",\"0\"],\"textposition\":\"auto\",\"x\":[\"pruner\",\"nonfinite_gradient\",\"other\"],\"y\":[0,0,0],\"type\":\"bar\"}],\"layout\":{\"template\":{\"data\":{\"histogram2dcontour\":[{\"type\":\"histogram2dcontour\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"choropleth\":[{\"type\":\"choropleth\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"histogram2d\":[{\"type\":\"histogram2d\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"heatmap\":[{\"type\":\"heatmap\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"contourcarpet\":[{\"type\":\"contourcarpet\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"contour\":[{\"type\":\"contour\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"surface\":[{\"type\":\"surface\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555"');
INSERT INTO study_system_attributes VALUES(4,1,'dashboard:plot_data:prune-reasons:1','"555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"mesh3d\":[{\"type\":\"mesh3d\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"scatter\":[{\"fillpattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2},\"type\":\"scatter\"}],\"parcoords\":[{\"type\":\"parcoords\",\"line\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterpolargl\":[{\"type\":\"scatterpolargl\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"bar\":[{\"error_x\":{\"color\":\"#2a3f5f\"},\"error_y\":{\"color\":\"#2a3f5f\"},\"marker\":{\"line\":{\"color\":\"#E5ECF6\",\"width\":0.5},\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"bar\"}],\"scattergeo\":[{\"type\":\"scattergeo\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterpolar\":[{\"type\":\"scatterpolar\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"histogram\":[{\"marker\":{\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"histogram\"}],\"scattergl\":[{\"type\":\"scattergl\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatter3d\":[{\"type\":\"scatter3d\",\"line\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}},\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scattermap\":[{\"type\":\"scattermap\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterternary\":[{\"type\":\"scatterternary\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scattercarpet\":[{\"type\":\"scattercarpet\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"carpet\":[{\"aaxis\":{\"endlinecolor\":\"#2a3f5f\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"minorgridcolor\":\"white\",\"startlinecolor\":\"#2a3f5f\"},\"baxis\":{\"endlinecolor\":\"#2a3f5f\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"minorgridcolor\":\"white\",\"startlinecolor\":\"#2a3f5f\"},\"type\":\"carpet\"}],\"table\":[{\"cells\":{\"fill\":{\"color\":\"#EBF0F8\"},\"line\":{\"color\":\"white\"}},\"header\":{\"fill\":{\"color\":\"#C8D4E3\"},\"line\":{\"color\":\"white\"}},\"type\":\"table\"}],\"barpolar\":[{\"marker\":{\"line\":{\"color\":\"#E5ECF6\",\"width\":0.5},\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"barpolar\"}],\"pie\":"');
INSERT INTO study_system_attributes VALUES(5,1,'dashboard:plot_data:prune-reasons:2','"[{\"automargin\":true,\"type\":\"pie\"}]},\"layout\":{\"autotypenumbers\":\"strict\",\"colorway\":[\"#636efa\",\"#EF553B\",\"#00cc96\",\"#ab63fa\",\"#FFA15A\",\"#19d3f3\",\"#FF6692\",\"#B6E880\",\"#FF97FF\",\"#FECB52\"],\"font\":{\"color\":\"#2a3f5f\"},\"hovermode\":\"closest\",\"hoverlabel\":{\"align\":\"left\"},\"paper_bgcolor\":\"white\",\"plot_bgcolor\":\"#E5ECF6\",\"polar\":{\"bgcolor\":\"#E5ECF6\",\"angularaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"radialaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"}},\"ternary\":{\"bgcolor\":\"#E5ECF6\",\"aaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"baxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"caxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"}},\"coloraxis\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}},\"colorscale\":{\"sequential\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]],\"sequentialminus\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]],\"diverging\":[[0,\"#8e0152\"],[0.1,\"#c51b7d\"],[0.2,\"#de77ae\"],[0.3,\"#f1b6da\"],[0.4,\"#fde0ef\"],[0.5,\"#f7f7f7\"],[0.6,\"#e6f5d0\"],[0.7,\"#b8e186\"],[0.8,\"#7fbc41\"],[0.9,\"#4d9221\"],[1,\"#276419\"]]},\"xaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\",\"title\":{\"standoff\":15},\"zerolinecolor\":\"white\",\"automargin\":true,\"zerolinewidth\":2},\"yaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\",\"title\":{\"standoff\":15},\"zerolinecolor\":\"white\",\"automargin\":true,\"zerolinewidth\":2},\"scene\":{\"xaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2},\"yaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"whit"');
INSERT INTO study_system_attributes VALUES(6,1,'dashboard:plot_data:prune-reasons:3','"e\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2},\"zaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2}},\"shapedefaults\":{\"line\":{\"color\":\"#2a3f5f\"}},\"annotationdefaults\":{\"arrowcolor\":\"#2a3f5f\",\"arrowhead\":0,\"arrowwidth\":1},\"geo\":{\"bgcolor\":\"white\",\"landcolor\":\"#E5ECF6\",\"subunitcolor\":\"white\",\"showland\":true,\"showlakes\":true,\"lakecolor\":\"white\"},\"title\":{\"x\":0.05}}},\"title\":{\"text\":\"Why trials were pruned (3 complete, 0 pruned, 0 failed)\"},\"xaxis\":{\"title\":{\"text\":\"prune_reason\"}},\"yaxis\":{\"title\":{\"text\":\"trials\"}}}}"');
INSERT INTO study_system_attributes VALUES(7,1,'artifacts:b88844e9-bcc6-4143-a3a5-320aaa40b108','"{\"artifact_id\": \"b88844e9-bcc6-4143-a3a5-320aaa40b108\", \"filename\": \"evaluation-trial-0.json\", \"mimetype\": \"application/json\", \"encoding\": null}"');
INSERT INTO study_system_attributes VALUES(8,1,'dashboard:plot_data:rmse-vs-snr:0','"{\"data\":[{\"error_y\":{\"array\":[2.8135854428640172,3.161560075558473,3.2265401419572175,3.9744024446091455,2.810832672284336,2.5644223958737333,3.765691329152043],\"arrayminus\":[3.142991602480162,4.028038713299857,4.474585722016878,5.427918400382781,3.7260799355306706,3.043809363406107,5.511535984750829],\"symmetric\":false,\"thickness\":1,\"type\":\"data\",\"width\":3},\"line\":{\"color\":\"#2ca02c\"},\"mode\":\"lines+markers\",\"name\":\"learned (R_blend)\",\"showlegend\":true,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[22.753283846814046,12.200189695652824,9.135625730917353,9.490276233235642,5.88014545634176,5.504629781161021,7.783700762827712],\"type\":\"scatter\",\"xaxis\":\"x\",\"yaxis\":\"y\"},{\"error_y\":{\"array\":[2.4654321422778622,2.103058670969185,0.027373672864968446,0.012786573194653816,0.007365926736717321,0.004246474483440912,0.002247520876040434],\"arrayminus\":[2.5601661541864296,2.7011836697795615,0.028831361670778766,0.0148806274320403,0.007503408295348388,0.004521969151754034,0.0025053188646911584],\"symmetric\":false,\"thickness\":1,\"type\":\"data\",\"width\":3},\"line\":{\"color\":\"#1f77b4\"},\"mode\":\"lines+markers\",\"name\":\"classic MUSIC (W\\u00b7YY\\u1d34\\u002fL\\u00b7W)\",\"showlegend\":true,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[11.56988493504827,4.75036649592201,0.29246639305391414,0.1586785063184024,0.08763267468845472,0.04906606027860678,0.027568142150473377],\"type\":\"scatter\",\"xaxis\":\"x\",\"yaxis\":\"y\"},{\"line\":{\"color\":\"#000000\",\"dash\":\"dash\"},\"mode\":\"lines\",\"name\":\"stochastic CRB\",\"showlegend\":true,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[1.00920883463305,0.48591713484550153,0.2569654768926596,0.14147583720019843,0.07901140636585527,0.044333757094080356,0.024913317636427082],\"type\":\"scatter\",\"xaxis\":\"x\",\"yaxis\":\"y\"},{\"error_y\":{\"array\":[6.202585620905936,6.015344555852543,6.207430846684623,5.493763138183539,5.473485027847765,5.6039991493610515,5.5914475124786165],\"arrayminus\":[6.201408546340772,5.904398149659684,6.787255178074513,6.191254744719224,6.009365141592454,6.281720431133078,6.114364395581667],\"symmetric\":false,\"thickness\":1,\"ty"');
INSERT INTO study_system_attributes VALUES(9,1,'dashboard:plot_data:rmse-vs-snr:1','"pe\":\"data\",\"width\":3},\"line\":{\"color\":\"#2ca02c\"},\"mode\":\"lines+markers\",\"name\":\"learned (R_blend)\",\"showlegend\":false,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[74.1072687577048,52.2102302816799,37.53129565316811,32.28907696498979,30.567431932428853,30.022426949235864,29.74772950541825],\"type\":\"scatter\",\"xaxis\":\"x2\",\"yaxis\":\"y2\"},{\"error_y\":{\"array\":[6.150585106187243,4.705506865558476,3.9219210390451043,3.1463745482985264,2.0684885423077217,0.8194105785553059,0.3934308689640609],\"arrayminus\":[5.922774092110373,5.203766862409051,3.6902598547747,3.5880096963484274,2.1608868601197546,0.8563130899825286,0.4227639270908661],\"symmetric\":false,\"thickness\":1,\"type\":\"data\",\"width\":3},\"line\":{\"color\":\"#1f77b4\"},\"mode\":\"lines+markers\",\"name\":\"classic MUSIC (W\\u00b7YY\\u1d34\\u002fL\\u00b7W)\",\"showlegend\":false,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[61.628409399200955,27.992797975812024,15.29951809779381,10.311811155776855,5.52576160881316,2.6829659595097377,1.4242555177688077],\"type\":\"scatter\",\"xaxis\":\"x2\",\"yaxis\":\"y2\"},{\"line\":{\"color\":\"#000000\",\"dash\":\"dash\"},\"mode\":\"lines\",\"name\":\"stochastic CRB\",\"showlegend\":false,\"x\":[-10.0,-5.0,0.0,5.0,10.0,15.0,20.0],\"y\":[66.8303058594482,32.1820858475682,17.01521275388054,9.36678523403756,5.230910707320834,2.9350471380474663,1.6493387486805866],\"type\":\"scatter\",\"xaxis\":\"x2\",\"yaxis\":\"y2\"}],\"layout\":{\"template\":{\"data\":{\"histogram2dcontour\":[{\"type\":\"histogram2dcontour\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"choropleth\":[{\"type\":\"choropleth\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"histogram2d\":[{\"type\":\"histogram2d\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],"');
INSERT INTO study_system_attributes VALUES(10,1,'dashboard:plot_data:rmse-vs-snr:2','"[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"heatmap\":[{\"type\":\"heatmap\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"contourcarpet\":[{\"type\":\"contourcarpet\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"contour\":[{\"type\":\"contour\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"surface\":[{\"type\":\"surface\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"},\"colorscale\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]]}],\"mesh3d\":[{\"type\":\"mesh3d\",\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}],\"scatter\":[{\"fillpattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2},\"type\":\"scatter\"}],\"parcoords\":[{\"type\":\"parcoords\",\"line\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterpolargl\":[{\"type\":\"scatterpolargl\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"bar\":[{\"error_x\":{\"color\":\"#2a3f5f\"},\"error_y\":{\"color\":\"#2a3f5f\"},\"marker\":{\"line\":{\"color\":\"#E5ECF6\",\"width\":0.5},\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"bar\"}],\"scattergeo\":[{\"type\":\"scattergeo\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterpolar\":[{\"type\":\"scatterpolar\",\"marker\":{\"colorbar\":{"');
INSERT INTO study_system_attributes VALUES(11,1,'dashboard:plot_data:rmse-vs-snr:3','"\"outlinewidth\":0,\"ticks\":\"\"}}}],\"histogram\":[{\"marker\":{\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"histogram\"}],\"scattergl\":[{\"type\":\"scattergl\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatter3d\":[{\"type\":\"scatter3d\",\"line\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}},\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scattermap\":[{\"type\":\"scattermap\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scatterternary\":[{\"type\":\"scatterternary\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"scattercarpet\":[{\"type\":\"scattercarpet\",\"marker\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}}}],\"carpet\":[{\"aaxis\":{\"endlinecolor\":\"#2a3f5f\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"minorgridcolor\":\"white\",\"startlinecolor\":\"#2a3f5f\"},\"baxis\":{\"endlinecolor\":\"#2a3f5f\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"minorgridcolor\":\"white\",\"startlinecolor\":\"#2a3f5f\"},\"type\":\"carpet\"}],\"table\":[{\"cells\":{\"fill\":{\"color\":\"#EBF0F8\"},\"line\":{\"color\":\"white\"}},\"header\":{\"fill\":{\"color\":\"#C8D4E3\"},\"line\":{\"color\":\"white\"}},\"type\":\"table\"}],\"barpolar\":[{\"marker\":{\"line\":{\"color\":\"#E5ECF6\",\"width\":0.5},\"pattern\":{\"fillmode\":\"overlay\",\"size\":10,\"solidity\":0.2}},\"type\":\"barpolar\"}],\"pie\":[{\"automargin\":true,\"type\":\"pie\"}]},\"layout\":{\"autotypenumbers\":\"strict\",\"colorway\":[\"#636efa\",\"#EF553B\",\"#00cc96\",\"#ab63fa\",\"#FFA15A\",\"#19d3f3\",\"#FF6692\",\"#B6E880\",\"#FF97FF\",\"#FECB52\"],\"font\":{\"color\":\"#2a3f5f\"},\"hovermode\":\"closest\",\"hoverlabel\":{\"align\":\"left\"},\"paper_bgcolor\":\"white\",\"plot_bgcolor\":\"#E5ECF6\",\"polar\":{\"bgcolor\":\"#E5ECF6\",\"angularaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"radialaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"}},\"ternary\":{\"bgcolor\":\"#E5ECF6\",\"aaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"baxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"},\"caxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\"}},\"coloraxis\":{\"colorbar\":{\"outlinewidth\":0,\"ticks\":\"\"}},\"colorscale\":{\"sequential\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],"');
INSERT INTO study_system_attributes VALUES(12,1,'dashboard:plot_data:rmse-vs-snr:4','"[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]],\"sequentialminus\":[[0.0,\"#0d0887\"],[0.1111111111111111,\"#46039f\"],[0.2222222222222222,\"#7201a8\"],[0.3333333333333333,\"#9c179e\"],[0.4444444444444444,\"#bd3786\"],[0.5555555555555556,\"#d8576b\"],[0.6666666666666666,\"#ed7953\"],[0.7777777777777778,\"#fb9f3a\"],[0.8888888888888888,\"#fdca26\"],[1.0,\"#f0f921\"]],\"diverging\":[[0,\"#8e0152\"],[0.1,\"#c51b7d\"],[0.2,\"#de77ae\"],[0.3,\"#f1b6da\"],[0.4,\"#fde0ef\"],[0.5,\"#f7f7f7\"],[0.6,\"#e6f5d0\"],[0.7,\"#b8e186\"],[0.8,\"#7fbc41\"],[0.9,\"#4d9221\"],[1,\"#276419\"]]},\"xaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\",\"title\":{\"standoff\":15},\"zerolinecolor\":\"white\",\"automargin\":true,\"zerolinewidth\":2},\"yaxis\":{\"gridcolor\":\"white\",\"linecolor\":\"white\",\"ticks\":\"\",\"title\":{\"standoff\":15},\"zerolinecolor\":\"white\",\"automargin\":true,\"zerolinewidth\":2},\"scene\":{\"xaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2},\"yaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2},\"zaxis\":{\"backgroundcolor\":\"#E5ECF6\",\"gridcolor\":\"white\",\"linecolor\":\"white\",\"showbackground\":true,\"ticks\":\"\",\"zerolinecolor\":\"white\",\"gridwidth\":2}},\"shapedefaults\":{\"line\":{\"color\":\"#2a3f5f\"}},\"annotationdefaults\":{\"arrowcolor\":\"#2a3f5f\",\"arrowhead\":0,\"arrowwidth\":1},\"geo\":{\"bgcolor\":\"white\",\"landcolor\":\"#E5ECF6\",\"subunitcolor\":\"white\",\"showland\":true,\"showlakes\":true,\"lakecolor\":\"white\"},\"title\":{\"x\":0.05}}},\"xaxis\":{\"anchor\":\"y\",\"domain\":[0.0,0.45],\"title\":{\"text\":\"SNR (dB)\"}},\"yaxis\":{\"anchor\":\"x\",\"domain\":[0.0,1.0],\"type\":\"log\"},\"xaxis2\":{\"anchor\":\"y2\",\"domain\":[0.55,1.0],\"title\":{\"text\":\"SNR (dB)\"}},\"yaxis2\":{\"anchor\":\"x2\",\"domain\":[0.0,1.0],\"type\":\"log\"},\"annotations\":[{\"font\":{\"size\":16},\"showarrow\":false,\"te"');
INSERT INTO study_system_attributes VALUES(13,1,'dashboard:plot_data:rmse-vs-snr:5','"xt\":\"angle RMSE (deg)\",\"x\":0.225,\"xanchor\":\"center\",\"xref\":\"paper\",\"y\":1.0,\"yanchor\":\"bottom\",\"yref\":\"paper\"},{\"font\":{\"size\":16},\"showarrow\":false,\"text\":\"range RMSE (m)\",\"x\":0.775,\"xanchor\":\"center\",\"xref\":\"paper\",\"y\":1.0,\"yanchor\":\"bottom\",\"yref\":\"paper\"},{\"font\":{\"size\":10},\"showarrow\":false,\"text\":\"MUSIC with the true K; 200 fresh scenes per point, the same scenes at every SNR; bars: 95% bootstrap intervals.\\u003cbr\\u003eSNR = p_k\\u002f\\u03c3\\u00b2 per element and per source, in dB (10 dB means \\u03c3\\u00b2 = 0.1 for p_k = 1)\",\"x\":0.5,\"xref\":\"paper\",\"y\":-0.5,\"yref\":\"paper\"}],\"legend\":{\"orientation\":\"h\",\"x\":0.5,\"xanchor\":\"center\",\"y\":-0.25},\"margin\":{\"b\":130},\"title\":{\"text\":\"Best model (trial #0): RMSE vs SNR\"}}}"');
CREATE TABLE trials (
	trial_id INTEGER NOT NULL, 
	number INTEGER, 
	study_id INTEGER, 
	state VARCHAR(8) NOT NULL, 
	datetime_start DATETIME, 
	datetime_complete DATETIME, 
	PRIMARY KEY (trial_id), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO trials VALUES(1,0,1,'COMPLETE','2026-11-30 07:09:21.672616','2026-11-30 07:09:22.835108');
INSERT INTO trials VALUES(2,1,1,'COMPLETE','2026-11-30 07:09:22.890105','2026-11-30 07:09:23.399342');
INSERT INTO trials VALUES(3,2,1,'COMPLETE','2026-11-30 07:09:23.433833','2026-11-30 07:09:24.384823');
CREATE TABLE trial_user_attributes (
	trial_user_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_user_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_user_attributes VALUES(1,1,'seed','0');
INSERT INTO trial_user_attributes VALUES(2,1,'val_seed','1');
INSERT INTO trial_user_attributes VALUES(3,1,'spec','"legacy"');
INSERT INTO trial_user_attributes VALUES(4,1,'spec_hash','"931def2756e51830ea737ebd7e876df70bcb12e4bc5f6998deda20c4d665a316"');
INSERT INTO trial_user_attributes VALUES(5,1,'device','"cpu"');
INSERT INTO trial_user_attributes VALUES(6,1,'threads','1');
INSERT INTO trial_user_attributes VALUES(7,1,'versions','{"covblend-hpo": "0.1.0", "torch": "2.13.0+cpu", "optuna": "5.0.0", "optuna-dashboard": "0.21.0", "sqlalchemy": "2.1.9", "psycopg": "3.3.9", "numpy": "2.4.6"}');
INSERT INTO trial_user_attributes VALUES(8,1,'eigengap_health','[0.422, 0.422]');
INSERT INTO trial_user_attributes VALUES(9,1,'nmse_db','-4.727389035151708');
INSERT INTO trial_user_attributes VALUES(10,1,'nmse_samp_db','-5.6724692854279235');
INSERT INTO trial_user_attributes VALUES(11,1,'gain_db','-0.9450802502762157');
INSERT INTO trial_user_attributes VALUES(12,1,'eigengap_health_final','0.421875');
INSERT INTO trial_user_attributes VALUES(13,1,'feasible','true');
INSERT INTO trial_user_attributes VALUES(14,1,'mean_gap','0.3492596889846027');
INSERT INTO trial_user_attributes VALUES(15,1,'angle_eff_db','21.643660629784748');
INSERT INTO trial_user_attributes VALUES(16,1,'range_eff_db','17.149231514670575');
INSERT INTO trial_user_attributes VALUES(17,1,'classic_angle_eff_db','14.867087098922227');
INSERT INTO trial_user_attributes VALUES(18,1,'classic_range_eff_db','6.813897672300503');
INSERT INTO trial_user_attributes VALUES(19,1,'win_rate','0.26865671641791045');
INSERT INTO trial_user_attributes VALUES(20,1,'train_s','0.984');
INSERT INTO trial_user_attributes VALUES(21,1,'checkpoint_artifact','"d6200229-f198-49d5-a8a4-d4c5a666da90"');
INSERT INTO trial_user_attributes VALUES(22,2,'seed','0');
INSERT INTO trial_user_attributes VALUES(23,2,'val_seed','1');
INSERT INTO trial_user_attributes VALUES(24,2,'spec','"legacy"');
INSERT INTO trial_user_attributes VALUES(25,2,'spec_hash','"931def2756e51830ea737ebd7e876df70bcb12e4bc5f6998deda20c4d665a316"');
INSERT INTO trial_user_attributes VALUES(26,2,'device','"cpu"');
INSERT INTO trial_user_attributes VALUES(27,2,'threads','1');
INSERT INTO trial_user_attributes VALUES(28,2,'versions','{"covblend-hpo": "0.1.0", "torch": "2.13.0+cpu", "optuna": "5.0.0", "optuna-dashboard": "0.21.0", "sqlalchemy": "2.1.9", "psycopg": "3.3.9", "numpy": "2.4.6"}');
INSERT INTO trial_user_attributes VALUES(29,2,'eigengap_health','[0.422, 0.422]');
INSERT INTO trial_user_attributes VALUES(30,2,'nmse_db','-4.681507624318554');
INSERT INTO trial_user_attributes VALUES(31,2,'nmse_samp_db','-5.6724692854279235');
INSERT INTO trial_user_attributes VALUES(32,2,'gain_db','-0.9909616611093695');
INSERT INTO trial_user_attributes VALUES(33,2,'eigengap_health_final','0.421875');
INSERT INTO trial_user_attributes VALUES(34,2,'feasible','true');
INSERT INTO trial_user_attributes VALUES(35,2,'mean_gap','0.3469618012313731');
INSERT INTO trial_user_attributes VALUES(36,2,'angle_eff_db','23.053861235942442');
INSERT INTO trial_user_attributes VALUES(37,2,'range_eff_db','19.60561995228479');
INSERT INTO trial_user_attributes VALUES(38,2,'classic_angle_eff_db','14.867087098922227');
INSERT INTO trial_user_attributes VALUES(39,2,'classic_range_eff_db','6.813897672300503');
INSERT INTO trial_user_attributes VALUES(40,2,'win_rate','0.208955223880597');
INSERT INTO trial_user_attributes VALUES(41,2,'train_s','0.419');
INSERT INTO trial_user_attributes VALUES(42,3,'seed','0');
INSERT INTO trial_user_attributes VALUES(43,3,'val_seed','1');
INSERT INTO trial_user_attributes VALUES(44,3,'spec','"legacy"');
INSERT INTO trial_user_attributes VALUES(45,3,'spec_hash','"931def2756e51830ea737ebd7e876df70bcb12e4bc5f6998deda20c4d665a316"');
INSERT INTO trial_user_attributes VALUES(46,3,'device','"cpu"');
INSERT INTO trial_user_attributes VALUES(47,3,'threads','1');
INSERT INTO trial_user_attributes VALUES(48,3,'versions','{"covblend-hpo": "0.1.0", "torch": "2.13.0+cpu", "optuna": "5.0.0", "optuna-dashboard": "0.21.0", "sqlalchemy": "2.1.9", "psycopg": "3.3.9", "numpy": "2.4.6"}');
INSERT INTO trial_user_attributes VALUES(49,3,'eigengap_health','[0.469, 0.469]');
INSERT INTO trial_user_attributes VALUES(50,3,'nmse_db','-3.672715427786831');
INSERT INTO trial_user_attributes VALUES(51,3,'nmse_samp_db','-5.6724692854279235');
INSERT INTO trial_user_attributes VALUES(52,3,'gain_db','-1.9997538576410925');
INSERT INTO trial_user_attributes VALUES(53,3,'eigengap_health_final','0.46875');
INSERT INTO trial_user_attributes VALUES(54,3,'feasible','true');
INSERT INTO trial_user_attributes VALUES(55,3,'mean_gap','0.3150453709240537');
INSERT INTO trial_user_attributes VALUES(56,3,'angle_eff_db','25.22813108028334');
INSERT INTO trial_user_attributes VALUES(57,3,'range_eff_db','28.078048291711223');
INSERT INTO trial_user_attributes VALUES(58,3,'classic_angle_eff_db','14.867087098922227');
INSERT INTO trial_user_attributes VALUES(59,3,'classic_range_eff_db','6.813897672300503');
INSERT INTO trial_user_attributes VALUES(60,3,'win_rate','0.208955223880597');
INSERT INTO trial_user_attributes VALUES(61,3,'train_s','0.867');
INSERT INTO trial_user_attributes VALUES(62,1,'retrain_mean_nmse_db','-3.3155479715729053');
INSERT INTO trial_user_attributes VALUES(63,1,'retrain_std_nmse_db','null');
INSERT INTO trial_user_attributes VALUES(64,1,'retrain_seeds','[0]');
INSERT INTO trial_user_attributes VALUES(65,1,'retrain_epochs','1');
CREATE TABLE trial_system_attributes (
	trial_system_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_system_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_system_attributes VALUES(1,1,'constraints:eigengap_health','-0.421875');
INSERT INTO trial_system_attributes VALUES(2,1,'artifacts:d6200229-f198-49d5-a8a4-d4c5a666da90','"{\"artifact_id\": \"d6200229-f198-49d5-a8a4-d4c5a666da90\", \"filename\": \"checkpoint-trial-0.pt\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO trial_system_attributes VALUES(3,2,'constraints:eigengap_health','-0.421875');
INSERT INTO trial_system_attributes VALUES(4,3,'constraints:eigengap_health','-0.46875');
CREATE TABLE trial_params (
	param_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	param_name VARCHAR(512), 
	param_value FLOAT, 
	distribution_json TEXT, 
	PRIMARY KEY (param_id), 
	UNIQUE (trial_id, param_name), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_params VALUES(1,1,'lr',0.0035384535909065511181,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO trial_params VALUES(2,1,'beta',0.34303787327448387323,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.2, "high": 0.4, "log": false}}');
INSERT INTO trial_params VALUES(3,2,'lr',0.0040064836619643946769,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO trial_params VALUES(4,2,'beta',0.30897663659937940616,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.2, "high": 0.4, "log": false}}');
INSERT INTO trial_params VALUES(5,3,'lr',0.0026524963767594754611,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, "high": 0.01, "log": true}}');
INSERT INTO trial_params VALUES(6,3,'beta',0.32917882261333120119,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.2, "high": 0.4, "log": false}}');
CREATE TABLE trial_values (
	trial_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	value FLOAT, 
	value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_value_id), 
	UNIQUE (trial_id, objective), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_values VALUES(1,1,0,21.660809861299419765,'FINITE');
INSERT INTO trial_values VALUES(2,2,0,23.073466855894725568,'FINITE');
INSERT INTO trial_values VALUES(3,3,0,25.256209128575051181,'FINITE');
CREATE TABLE trial_intermediate_values (
	trial_intermediate_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	step INTEGER NOT NULL, 
	intermediate_value FLOAT, 
	intermediate_value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_intermediate_value_id), 
	UNIQUE (trial_id, step), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_intermediate_values VALUES(1,1,0,28.563222469057546249,'FINITE');
INSERT INTO trial_intermediate_values VALUES(2,1,1,21.660809861299419765,'FINITE');
INSERT INTO trial_intermediate_values VALUES(3,2,0,22.04337161211583762,'FINITE');
INSERT INTO trial_intermediate_values VALUES(4,2,1,23.073466855894725568,'FINITE');
INSERT INTO trial_intermediate_values VALUES(5,3,0,35.634896486376987922,'FINITE');
INSERT INTO trial_intermediate_values VALUES(6,3,1,25.256209128575051181,'FINITE');
CREATE TABLE trial_heartbeats (
	trial_heartbeat_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	heartbeat DATETIME NOT NULL, 
	PRIMARY KEY (trial_heartbeat_id), 
	UNIQUE (trial_id), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_heartbeats VALUES(1,1,'2026-11-30 07:09:21');
INSERT INTO trial_heartbeats VALUES(2,2,'2026-11-30 07:09:22');
INSERT INTO trial_heartbeats VALUES(3,3,'2026-11-30 07:09:23');
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version VALUES('v3.2.0.a');
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE INDEX ix_trials_study_id ON trials (study_id);
COMMIT;
