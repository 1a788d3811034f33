// Extract of @northflank/js-client@0.9.5 dist/esm/api-client.d.ts (made by extract.sh).
type PutJobCronData = {
    /** The name of the job. Example: "Example Job" */
    'name': string;
    /** A description of the job. Example: "A job description" */
    'description'?: string;
    'stageId'?: string;
    'infrastructure'?: {
        'architecture'?: 'x86' | 'arm';
    };
    /** An array of previously defined tags to help identify and group the resource. */
    'tags'?: string[];
    'billing': {
        /** The ID of the build plan to use. Example: "nf-compute-200-8" */
        'buildPlan'?: string;
        /** The ID of the deployment plan to use. Example: "nf-compute-20" */
        'deploymentPlan': string;
        'gpu'?: {
            'enabled'?: boolean;
            'configuration'?: {
                'gpuType': string;
                'gpuCount'?: number;
                'timesliced'?: boolean;
            };
        };
    };
    /** Where to deploy the job from. */
    'deployment'?: {
        /** Allows for customization of buildpack runtime */
        'buildpack'?: {
            /** Type of buildpack run configuration */
            'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
            /** Custom process which should be run. Required in case where `configType` is `customProcess` */
            'customProcess'?: string;
            /** Custom entrypoint which should be run. Required in case where `configType` is `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be run. Required in case where `configType` is `customCommand`, `customEntrypointCustomCommand` or `originalEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        /** Allows for customization of docker runtime */
        'docker'?: {
            /** Type of entrypoint & command override configuration Example: "default" */
            'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
            /** Custom entrypoint which should be used. Required in case where `configType` is `customEntrypoint` or `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be used. Required in case where `configType` is `customCommand` or `customEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        'storage'?: {
            'useHdbStorage'?: boolean;
            'usePdSsdStorage'?: boolean;
            'ephemeralStorage'?: {
                /** Ephemeral storage per container in MB Example: 1024 */
                'storageSize'?: number;
            };
            /** Configures the amount of available memory-backed disk space available to /dev/shm */
            'shmSize'?: number;
        };
        'gpu'?: {
            'enabled'?: boolean;
            'configuration'?: {
                'gpuType': string;
                'gpuCount'?: number;
                'timesliced'?: boolean;
            };
        };
        /** The maximum amount of time the process has to shut down after receiving a SIGTERM signal before it is forcefully shut down SIGKILL by the system. */
        'gracePeriodSeconds'?: number;
        /** Allow setting custom labels and annotations for workloads. */
        'metadata'?: {
            /** Specify custom labels for the workload. */
            'labels'?: any;
            /** Specify custom annotations for the workload as string or object. */
            'annotations'?: any;
        };
        'vcs': {
            /** URL of the Git repo to build. Example: "https://github.com/northflank/gatsby-with-northflank" */
            'projectUrl': string;
            /** The VCS provider to use. Example: "github" */
            'projectType': 'bitbucket' | 'gitlab' | 'github' | 'self-hosted' | 'azure';
            /** If projectType is self-hosted, the ID of the self-hosted vcs to use. */
            'selfHostedVcsId'?: string;
            /** By default, if you have multiple version control accounts of the same provider linked, Northflank will pick a linked account that has access to the repository. If `accountLogin` is provided, Northflank will instead use your linked account with that login name. Example: "github-user" */
            'accountLogin'?: string;
            /** By default, if you have multiple version control accounts of the same provider linked, Northflank will pick a linked account that has access to the repository. If `vcsLinkId` is provided, Northflank will instead use your linked account with that ID. */
            'vcsLinkId'?: string;
            /** The name of the branch to use. Example: "master" */
            'projectBranch': string;
        };
    } | {
        /** Allows for customization of buildpack runtime */
        'buildpack'?: {
            /** Type of buildpack run configuration */
            'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
            /** Custom process which should be run. Required in case where `configType` is `customProcess` */
            'customProcess'?: string;
            /** Custom entrypoint which should be run. Required in case where `configType` is `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be run. Required in case where `configType` is `customCommand`, `customEntrypointCustomCommand` or `originalEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        /** Allows for customization of docker runtime */
        'docker'?: {
            /** Type of entrypoint & command override configuration Example: "default" */
            'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
            /** Custom entrypoint which should be used. Required in case where `configType` is `customEntrypoint` or `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be used. Required in case where `configType` is `customCommand` or `customEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        'storage'?: {
            'useHdbStorage'?: boolean;
            'usePdSsdStorage'?: boolean;
            'ephemeralStorage'?: {
                /** Ephemeral storage per container in MB Example: 1024 */
                'storageSize'?: number;
            };
            /** Configures the amount of available memory-backed disk space available to /dev/shm */
            'shmSize'?: number;
        };
        'gpu'?: {
            'enabled'?: boolean;
            'configuration'?: {
                'gpuType': string;
                'gpuCount'?: number;
                'timesliced'?: boolean;
            };
        };
        /** The maximum amount of time the process has to shut down after receiving a SIGTERM signal before it is forcefully shut down SIGKILL by the system. */
        'gracePeriodSeconds'?: number;
        /** Allow setting custom labels and annotations for workloads. */
        'metadata'?: {
            /** Specify custom labels for the workload. */
            'labels'?: any;
            /** Specify custom annotations for the workload as string or object. */
            'annotations'?: any;
        };
        'external': {
            /** Image to be deployed. When not deploying from Dockerhub the URL must be specified. Example: "nginx:latest" */
            'imagePath': string;
            /** ID of the saved credentials to use to access this external image. Example: "example-credentials" */
            'credentials'?: string;
        };
    } | {
        /** Allows for customization of buildpack runtime */
        'buildpack'?: {
            /** Type of buildpack run configuration */
            'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
            /** Custom process which should be run. Required in case where `configType` is `customProcess` */
            'customProcess'?: string;
            /** Custom entrypoint which should be run. Required in case where `configType` is `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be run. Required in case where `configType` is `customCommand`, `customEntrypointCustomCommand` or `originalEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        /** Allows for customization of docker runtime */
        'docker'?: {
            /** Type of entrypoint & command override configuration Example: "default" */
            'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
            /** Custom entrypoint which should be used. Required in case where `configType` is `customEntrypoint` or `customEntrypointCustomCommand` */
            'customEntrypoint'?: string;
            /** Custom command which should be used. Required in case where `configType` is `customCommand` or `customEntrypointCustomCommand` */
            'customCommand'?: string;
        };
        'storage'?: {
            'useHdbStorage'?: boolean;
            'usePdSsdStorage'?: boolean;
            'ephemeralStorage'?: {
                /** Ephemeral storage per container in MB Example: 1024 */
                'storageSize'?: number;
            };
            /** Configures the amount of available memory-backed disk space available to /dev/shm */
            'shmSize'?: number;
        };
        'gpu'?: {
            'enabled'?: boolean;
            'configuration'?: {
                'gpuType': string;
                'gpuCount'?: number;
                'timesliced'?: boolean;
            };
        };
        /** The maximum amount of time the process has to shut down after receiving a SIGTERM signal before it is forcefully shut down SIGKILL by the system. */
        'gracePeriodSeconds'?: number;
        /** Allow setting custom labels and annotations for workloads. */
        'metadata'?: {
            /** Specify custom labels for the workload. */
            'labels'?: any;
            /** Specify custom annotations for the workload as string or object. */
            'annotations'?: any;
        };
        'internal': {
            /** ID of the build service to deploy */
            'id'?: string;
            /** Branch to deploy Example: "master" */
            'branch'?: string;
            /** Commit SHA to deploy, or 'latest' to deploy the most recent commit Example: "latest" */
            'buildSHA'?: string | 'latest';
            /** ID of the build that should be deployed Example: "premium-guide-6393" */
            'buildId'?: string;
        };
    } | any;
    /** Whether CI should be disabled. Only relevant for jobs deploying directly from version control. */
    'disabledCI'?: boolean;
    'buildConfiguration'?: {
        /** An array of path ignore rules. A commit will only be built if a file has been changed that does not match any of the ignore rules. Path ignore rules follow `.gitignore` syntax. */
        'pathIgnoreRules'?: string[];
        /** If `true`, the functionality of `pathIgnoreRules` will be inverted. A commit will only be built if a file has been changed that matches one or more of the rules in `pathIgnoreRules`. */
        'isAllowList'?: boolean;
        /** If `true`, enables commit ignore flags. If a commit message contains one or more of the flags in `ciIgnoreFlags`, that commit will not be built. */
        'ciIgnoreFlagsEnabled'?: boolean;
        /** An array of commit ignore flags. If a commit message contains one or more of these flags, that commit will not be built. Defaults to `["[skip ci]", "[ci skip]", "[no ci]", "[skip nf]", "[nf skip]", "[northflank skip]", "[skip northflank]"]` Example: ["[skip ci]","[ci skip]","[no ci]","[skip nf]","[nf skip]","[northflank skip]","[skip northflank]"] */
        'ciIgnoreFlags'?: string[];
        /** If your Dockerfile contains multiple build stages, you can specify the target stage by entering its name here. */
        'dockerfileTarget'?: string;
        'dockerCredentials'?: string[];
        /** Include .git folder inside the build context */
        'includeGitFolder'?: boolean;
        /** Include the entire git history as part of the .git folder. Only relevant if "includeGitFolder" is set. */
        'fullGitClone'?: boolean;
        /** Enable Git LFS support for the build */
        'enableGitLfs'?: boolean;
        'storage'?: {
            'ephemeralStorage'?: {
                /** Ephemeral storage per build in MB Example: 16384 */
                'storageSize'?: number;
            };
        };
    };
    /** Build engine */
    'buildSettings'?: {
        'storage'?: {
            'ephemeralStorage'?: {
                /** Ephemeral storage per build in MB Example: 16384 */
                'storageSize'?: number;
            };
        };
        'dockerfile': {
            /** DEPRECATED: This field will be removed in the near future and currently has no effect. */
            'useCache'?: boolean;
            /** Build engine to use. Defaults to recommended build engine `buildkit` Example: "buildkit" */
            'buildEngine'?: 'buildkit' | 'kaniko';
            /** The file path of the Dockerfile. Example: "/Dockerfile" */
            'dockerFilePath': string;
            /** The working directory of the Dockerfile. Example: "/" */
            'dockerWorkDir': string;
            'buildkit'?: {
                /** Use persistent storage to cache build layers. Example: true */
                'useCache'?: boolean;
                /** The amount of persistent storage available to each build in MB. Example: 32768 */
                'cacheStorageSize'?: number;
                /** DEPRECATED: This field will be removed in the near future. */
                'useInternalCache'?: boolean;
                /** DEPRECATED: This field will be removed in the near future. */
                'internalCacheStorage'?: number;
            };
        };
    } | {
        'storage'?: {
            'ephemeralStorage'?: {
                /** Ephemeral storage per build in MB Example: 16384 */
                'storageSize'?: number;
            };
        };
        'buildpack': {
            /** Buildpack stack to use. Defaults to recommended stack `HEROKU_24`. Example: "HEROKU_24" */
            'builder'?: 'HEROKU_24' | 'HEROKU_22' | 'HEROKU_22_CLASSIC' | 'HEROKU_20' | 'HEROKU_18' | 'GOOGLE_22' | 'GOOGLE_V1' | 'CNB_ALPINE' | 'CNB_BIONIC' | 'PAKETO_JAMMY_TINY' | 'PAKETO_JAMMY_BASE' | 'PAKETO_JAMMY_FULL' | 'PAKETO_TINY' | 'PAKETO_BASE' | 'PAKETO_FULL';
            /** Array of custom Buildpacks to use. */
            'buildpackLocators'?: string[];
            /** The working directory to build in. Example: "/" */
            'buildContext'?: string;
            /** Should build dependencies be cached? */
            'useCache'?: boolean;
        };
    };
    /** An object containing the runtime environment to set for the job. Keys may only contain letters, numbers, hyphens, forward slashes and dots. Example: {"variable1":"abcdef","variable2":"12345"} */
    'runtimeEnvironment'?: any;
    /** Secret files as JSON object, encrypted at rest. File path must be absolute Example: {"/dir/fileName":{"data":"VGhpcyBpcyBhbiBleGFtcGxlIHdpdGggYSB0ZW1wbGF0ZWQgJHtOT0RFX0VOVn0gdmFyaWFibGU=","encoding":"utf-8"}} */
    'runtimeFiles'?: any;
    /** An object containing the build arguments to set for the job. Keys may only contain letters, numbers, hyphens, forward slashes and dots. Example: {"variable1":"abcdef","variable2":"12345"} */
    'buildArguments'?: any;
    /** Secret files as JSON object, encrypted at rest. File path must be absolute Example: {"/dir/fileName":{"data":"VGhpcyBpcyBhbiBleGFtcGxlIHdpdGggYSB0ZW1wbGF0ZWQgJHtOT0RFX0VOVn0gdmFyaWFibGU=","encoding":"utf-8"}} */
    'buildFiles'?: any;
    /** Docker secret mount contents as JSON object, encrypted at rest. Must be a valid Docker secret mount identifier Example: {"example-secret-mount_1":{"data":"VGhpcyBpcyBhbiBleGFtcGxlIHdpdGggYSB0ZW1wbGF0ZWQgJHtOT0RFX0VOVn0gdmFyaWFibGU=","encoding":"utf-8"}} */
    'dockerSecretMounts'?: any;
    /** An array of health checks. */
    'healthChecks'?: {
        /** The protocol to access the health check with. Example: "HTTP" */
        'protocol': 'HTTP' | 'CMD' | 'TCP';
        /** The type of health check. Example: "readinessProbe" */
        'type': 'livenessProbe' | 'readinessProbe' | 'startupProbe';
        /** The path of the health check endpoint. Required when protocol is HTTP. Example: "/health-check" */
        'path'?: string;
        /** The command to run for the health check. Required when protocol is CMD */
        'cmd'?: string;
        /** Port number for the health check endpoint. Required when protocol is HTTP. Example: 8080 */
        'port'?: number;
        /** Initial delay, in seconds, before the health check is first run. Example: 10 */
        'initialDelaySeconds': number;
        /** The time between each check, in seconds. Example: 60 */
        'periodSeconds': number;
        /** The time to wait for a response before marking the health check as a failure. Example: 1 */
        'timeoutSeconds': number;
        /** The maximum number of allowed failures. Example: 3 */
        'failureThreshold': number;
        /** The number of successes required to mark the health check as a success. Example: 1 */
        'successThreshold'?: number;
    }[];
    /** The number of attempts to rerun a job before it is marked as failed. */
    'backoffLimit': number;
    /** Configure when the job should be run if the source image changes. Example: "never" */
    'runOnSourceChange'?: 'never' | 'cd-promote' | 'always';
    /** The maximum amount of time, in seconds, for a job to run before it is marked as failed. Example: 600 */
    'activeDeadlineSeconds'?: number | null;
    /** The cron timer scheduling when to run the job. Example: "30 8 * * *" */
    'schedule'?: string | null;
    /** Whether the cron's automatic scheduling is suspended */
    'suspended'?: boolean;
    /** Whether this job should run when another instance of the job is already running. `allow` will enable multiple instances of this job to run. `forbid` will keep the current instance of the job running and stop a new instance from being run. `replace` will terminate any currently running instance of the job and start a new one. Example: "forbid" */
    'concurrencyPolicy'?: 'allow' | 'forbid' | 'replace';
};
type ListJobsResult = {
    /** An array of job objects. */
    'jobs': {
        /** Identifier for the job Example: "example-job" */
        'id': string;
        /** ID of the project that the job belongs to Example: "default-project" */
        'projectId': string;
        /** Full identifier used for job deployment Example: "/example-user/default-project/example-job" */
        'appId': string;
        /** Job name Example: "Example Job" */
        'name': string;
        /** An array of previously defined tags to help identify and group the resource. */
        'tags': string[];
        /** A short description of the job Example: "This is the job description" */
        'description'?: string;
        /** Type of the job (manual or cron) Example: "cron" */
        'jobType': 'manual' | 'cron';
        /** Whether Continuous Integration is disabled */
        'disabledCI': boolean;
        /** Whether Continuous Deployment is disabled */
        'disabledCD': boolean;
        /** Cron specific. Whether or not the job's automatic scheduling is suspended */
        'suspended'?: boolean;
    }[];
};
type GetJobResult = {
    /** Identifier for the job Example: "example-job" */
    'id': string;
    /** Full identifier used for job deployment Example: "/example-user/default-project/example-job" */
    'appId': string;
    /** Job name Example: "Example Job" */
    'name': string;
    /** An array of previously defined tags to help identify and group the resource. */
    'tags': string[];
    /** A short description of the job Example: "This is the job description" */
    'description'?: string;
    /** ID of the project that the job belongs to Example: "default-project" */
    'projectId': string;
    /** Type of the job (manual or cron) Example: "cron" */
    'jobType': 'manual' | 'cron';
    /** The time the job was created. Example: "2021-01-20T11:19:53.175Z" */
    'createdAt': string;
    'vcsData'?: {
        /** URL of the repository being built Example: "https://github.com/northflank/gatsby-with-northflank" */
        'projectUrl': string;
        /** VCS provider for the repo being built Example: "github" */
        'projectType': 'bitbucket' | 'gitlab' | 'github' | 'self-hosted' | 'azure';
        /** ID of the self-hosted VCS, if applicable. Example: "example-team/self-hosted-vcs" */
        'selfHostedVcsId'?: string;
        /** Branch of the repo being built Example: "master" */
        'projectBranch'?: string;
        /** Whether the repo is being accessed without authentication. */
        'publicRepo'?: boolean;
        /** Working directory used by the dockerfile Example: "/" */
        'dockerWorkDir': string;
        /** File path of the Dockerfile Example: "/Dockerfile" */
        'dockerFilePath': string;
    };
    'buildConfiguration'?: {
        /** An array of path ignore rules. A commit will only be built if a file has been changed that does not match any of the ignore rules. Path ignore rules follow `.gitignore` syntax. */
        'pathIgnoreRules'?: string[];
        /** If `true`, the functionality of `pathIgnoreRules` will be inverted. A commit will only be built if a file has been changed that matches one or more of the rules in `pathIgnoreRules`. */
        'isAllowList'?: boolean;
        /** If `true`, enables commit ignore flags. If a commit message contains one or more of the flags in `ciIgnoreFlags`, that commit will not be built. */
        'ciIgnoreFlagsEnabled'?: boolean;
        /** An array of commit ignore flags. If a commit message contains one or more of these flags, that commit will not be built. Defaults to `["[skip ci]", "[ci skip]", "[no ci]", "[skip nf]", "[nf skip]", "[northflank skip]", "[skip northflank]"]` Example: ["[skip ci]","[ci skip]","[no ci]","[skip nf]","[nf skip]","[northflank skip]","[skip northflank]"] */
        'ciIgnoreFlags'?: string[];
        /** If your Dockerfile contains multiple build stages, you can specify the target stage by entering its name here. */
        'dockerfileTarget'?: string;
        'dockerCredentials'?: string[];
        /** Include .git folder inside the build context */
        'includeGitFolder'?: boolean;
        /** Include the entire git history as part of the .git folder. Only relevant if "includeGitFolder" is set. */
        'fullGitClone'?: boolean;
        /** Enable Git LFS support for the build */
        'enableGitLfs'?: boolean;
        'storage'?: {
            'ephemeralStorage'?: {
                /** Ephemeral storage per build in MB Example: 16384 */
                'storageSize'?: number;
            };
        };
    };
    'buildEngineConfiguration'?: {
        /** The build engine used. Example: "buildpack" */
        'buildEngine'?: 'buildpack' | 'buildkit' | 'kaniko';
        /** Details about Buildpack settings. */
        'buildpack'?: {
            /** The Buildpack stack used. Example: "HEROKU_24" */
            'builder'?: 'HEROKU_24' | 'HEROKU_22' | 'HEROKU_22_CLASSIC' | 'HEROKU_20' | 'HEROKU_18' | 'GOOGLE_22' | 'GOOGLE_V1' | 'CNB_ALPINE' | 'CNB_BIONIC' | 'PAKETO_JAMMY_TINY' | 'PAKETO_JAMMY_BASE' | 'PAKETO_JAMMY_FULL' | 'PAKETO_TINY' | 'PAKETO_BASE' | 'PAKETO_FULL';
            /** Array of custom Buildpacks used. */
            'buildpackLocators'?: string[];
            /** Should build dependencies be cached? */
            'useCache'?: boolean;
        };
        /** Details about Buildkit settings. */
        'buildkit'?: {
            /** Should intermediate image layers be cached? */
            'useCache'?: boolean;
            /** Should use persistent storage to store all layers? */
            'useInternalCache'?: boolean;
            /** Storage size to use for internal cache */
            'internalCacheStorage'?: boolean;
        };
        /** Details about Kaniko settings. */
        'kaniko'?: {
            /** Should intermediate image layers be cached? */
            'useCache'?: boolean;
        };
    };
    /** Whether Continuous Integration is disabled */
    'disabledCI': boolean;
    /** Whether Continuous Deployment is disabled */
    'disabledCD': boolean;
    'deployment'?: {
        /** Region where this job is deployed and built Example: "europe-west" */
        'region'?: string;
        /** Details about the Buildpack overrides for this deployment. */
        'buildpack'?: {
            /** Type of buildpack run configuration. Example: "default" */
            'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
            /** Custom process which should be run. */
            'customProcess'?: string;
            /** Custom entrypoint which should be run. */
            'customEntrypoint'?: string;
            /** Custom command which should be run. */
            'customCommand'?: string;
        };
        /** Details about the Docker overrides for this deployment. */
        'docker'?: {
            /** Override configuration which is used at runtime. Example: "default" */
            'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
            /** The CMD to run instead of the default if entrypoint override is enabled. */
            'customEntrypoint'?: string;
            /** The CMD to run instead of the default if CMD override is enabled. */
            'customCommand'?: string;
        };
        /** Details about storage settings for this deployment. */
        'storage'?: {
            /** Details about ephemeral storage settings for this deployment. */
            'ephemeralStorage'?: {
                /** Ephemeral storage per container in MB Example: 1024 */
                'storageSize': number;
            };
            /** Configures the amount of available memory-backed disk space available to /dev/shm */
            'shmSize'?: number;
        };
    };
    'billing': {
        /** ID of the billing plan used by this job Example: "nf-compute-20" */
        'deploymentPlan': string;
    };
    /** Cron specific. Whether or not the job's automatic scheduling is suspended */
    'suspended'?: boolean;
    /** Job settings */
    'settings': {
        /** Cron job specific settings */
        'cron'?: {
            /** The cron timer scheduling when to run the job. Example: "30 8 * * *" */
            'schedule'?: string;
            /** Whether this job should run when another instance of the job is already running. Example: "Allow" */
            'concurrencyPolicy'?: 'Allow' | 'Forbid' | 'Replace';
        };
        /** The number of attempts to rerun a job before it is marked as failed. */
        'backoffLimit': number;
        /** The maximum amount of time, in seconds, for a job to run before it is marked as failed. Example: 600 */
        'activeDeadlineSeconds': number;
    };
    /** Cluster information */
    'cluster': {
        /** The id of the cluster associated with this project. Example: "nf-europe-west" */
        'id': string;
        /** The name of the cluster associated with this project. Example: "nf-europe-west" */
        'name': string;
        /** Namespace this resource is located within on the cluster. Example: "ns-8zy2mcjh9zn2" */
        'namespace'?: string;
        /** Load balancer DNS for the cluster. */
        'loadBalancers'?: string[];
    };
};
type GetJobDeploymentResult = {
    /** Region where this service is deployed and/or built Example: "europe-west" */
    'region'?: string;
    /** Number of instances/replicas running Example: 1 */
    'instances'?: number;
    /** Details about the Docker overrides for this deployment. */
    'docker'?: {
        /** Override configuration which is used at runtime. Example: "default" */
        'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
        /** The CMD to run instead of the default if entrypoint override is enabled. */
        'customEntrypoint'?: string;
        /** The CMD to run instead of the default if CMD override is enabled. */
        'customCommand'?: string;
    };
    /** Details about the Buildpack overrides for this deployment. */
    'buildpack'?: {
        /** Type of buildpack run configuration. Example: "default" */
        'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
        /** Custom process which should be run. */
        'customProcess'?: string;
        /** Custom entrypoint which should be run. */
        'customEntrypoint'?: string;
        /** Custom command which should be run. */
        'customCommand'?: string;
    };
    /** Details about storage settings for this deployment. */
    'storage'?: {
        /** Details about ephemeral storage settings for this deployment. */
        'ephemeralStorage'?: {
            /** Ephemeral storage per container in MB Example: 1024 */
            'storageSize': number;
        };
        /** Configures the amount of available memory-backed disk space available to /dev/shm */
        'shmSize'?: number;
    };
    'internal': {
        /** Full identifier of deployed entity Example: "/example-user/default-project/example-service" */
        'appId': string;
        /** ID of deployed entity Example: "example-service" */
        'nfObjectId': string;
        /** URL of the repository being deployed Example: "https://github.com/northflank/gatsby-with-northflank" */
        'repository': string;
        /** Branch of the repo being deployed Example: "master" */
        'branch': string;
        /** ID of the build currently deployed. Example: "incredible-land-3266" */
        'buildId': string;
        /** Commit SHA being deployed. `latest` means the latest commit is automatically being deployed. Example: "latest" */
        'buildSHA': string;
        /** Currently deployed commit SHA. If buildSHA is set to `latest`, this will show the SHA of the latest commit. Example: "262ed9817b3cad5142fbceabe0c9e371e390d616" */
        'deployedSHA'?: string;
        /** Type of deployed entity Example: "service" */
        'nfObjectType': 'service' | 'job';
    };
} | {
    /** Region where this service is deployed and/or built Example: "europe-west" */
    'region'?: string;
    /** Number of instances/replicas running Example: 1 */
    'instances'?: number;
    /** Details about the Docker overrides for this deployment. */
    'docker'?: {
        /** Override configuration which is used at runtime. Example: "default" */
        'configType': 'default' | 'customEntrypoint' | 'customCommand' | 'customEntrypointCustomCommand';
        /** The CMD to run instead of the default if entrypoint override is enabled. */
        'customEntrypoint'?: string;
        /** The CMD to run instead of the default if CMD override is enabled. */
        'customCommand'?: string;
    };
    /** Details about the Buildpack overrides for this deployment. */
    'buildpack'?: {
        /** Type of buildpack run configuration. Example: "default" */
        'configType': 'default' | 'customProcess' | 'customCommand' | 'customEntrypointCustomCommand' | 'originalEntrypointCustomCommand';
        /** Custom process which should be run. */
        'customProcess'?: string;
        /** Custom entrypoint which should be run. */
        'customEntrypoint'?: string;
        /** Custom command which should be run. */
        'customCommand'?: string;
    };
    /** Details about storage settings for this deployment. */
    'storage'?: {
        /** Details about ephemeral storage settings for this deployment. */
        'ephemeralStorage'?: {
            /** Ephemeral storage per container in MB Example: 1024 */
            'storageSize': number;
        };
        /** Configures the amount of available memory-backed disk space available to /dev/shm */
        'shmSize'?: number;
    };
    'external': {
        /** Path of the external image excluding the hostname Example: "nginx:latest" */
        'imagePath': string;
        /** Registry provider hosting the external image Example: "dockerhub" */
        'registryProvider': 'acr' | 'ecr' | 'gar' | 'dockerhub' | 'dhi' | 'github' | 'gitlab' | 'custom' | 'legacy';
        /** Does the image require authentication */
        'privateImage': boolean;
    };
};
type GetJobRuntimeenvironmentResult = {
    /** The runtime environment variables, formatted as a JSON object. If the `show` parameter is set to `this`, this will only contain secrets saved to this entity. If the `show` parameter is set to `inherited`, this will only contain secrets inherited from linked secret groups. Otherwise, this will contain both. Example: {"VARIABLE_1":"abcdef","VARIABLE_2":"12345"} */
    'runtimeEnvironment': any;
    /** The runtime secret files, formatted as a JSON object. If the `show` parameter is set to `this`, this will only contain files saved to this entity. If the `show` parameter is set to `inherited`, this will only contain files inherited from linked secret groups. Otherwise, this will contain both. Example: {"/dir/fileName":{"data":"VGhpcyBpcyBhbiBleGFtcGxlIHdpdGggYSB0ZW1wbGF0ZWQgJHtOT0RFX0VOVn0gdmFyaWFibGU=","encoding":"utf-8"}} */
    'runtimeFiles': any;
};
type GetJobHealthchecksResult = {
    /** An array of health checks. */
    'healthChecks': {
        /** The protocol to access the health check with. Example: "HTTP" */
        'protocol': 'HTTP' | 'CMD' | 'TCP';
        /** The type of health check. Example: "readinessProbe" */
        'type': 'livenessProbe' | 'readinessProbe';
        /** The path of the health check endpoint. Example: "/health-check" */
        'path'?: string | null;
        /** The command to run for the health check. */
        'cmd'?: any;
        /** HTTP port number for the health check endpoint. Example: 3000 */
        'httpPort'?: any;
        /** TCP port number for the health check endpoint. */
        'tcpSocketPort'?: any;
        /** Initial delay, in seconds, before the health check is first run. Example: 10 */
        'initialDelaySeconds': number;
        /** The time between each check, in seconds. Example: 60 */
        'periodSeconds': number;
        /** The time to wait for a response before marking the health check as a failure. Example: 1 */
        'timeoutSeconds': number;
        /** The maximum number of allowed failures. Example: 3 */
        'failureThreshold': number;
        /** The number of successes required to mark the health check as a success. Example: 1 */
        'successThreshold'?: any;
    }[];
};
type GetJobBuildargumentsResult = {
    /** The build arguments, formatted as a JSON object. If the `show` parameter is set to `this`, this will only contain secrets saved to this entity. If the `show` parameter is set to `inherited`, this will only contain secrets inherited from linked secret groups. Otherwise, this will contain both. Example: {"ARGUMENT_1":"abcdef","ARGUMENT_2":"12345"} */
    'buildArguments': any;
    /** The build secret files, formatted as a JSON object. If the `show` parameter is set to `this`, this will only contain files saved to this entity. If the `show` parameter is set to `inherited`, this will only contain files inherited from linked secret groups. Otherwise, this will contain both. Example: {"/dir/fileName":{"data":"VGhpcyBpcyBhbiBleGFtcGxlIHdpdGggYSB0ZW1wbGF0ZWQgJHtOT0RFX0VOVn0gdmFyaWFibGU=","encoding":"utf-8"}} */
    'buildFiles': any;
};
