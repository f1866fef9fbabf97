// Package manifest reads CloudNativePG Cluster, Barman Cloud ObjectStore and Secret objects from
// multi-document YAML or JSON. It defines only the fields cnpg-preflight reads; the object-store
// blocks are decoded strictly (every unknown field is reported with its path and line), the rest
// of a Cluster is read leniently, as the API server would store it.
package manifest

// Meta is the part of metadata we read.
type Meta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	UID         string            `yaml:"uid"` // a live object's (Events name it as the object they regard)
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// Origin says where an object was read from.
type Origin struct {
	File string // file name, "-" for stdin, "" for a live cluster
	Line int    // line of the object's first key, 0 if unknown
}

// Issue is a problem found while decoding a field that still lets the object be read
// (an unknown field in an object-store block). It is reported in the matrix, not as bad input.
type Issue struct {
	Path string // field path, e.g. spec.backup.barmanObjectStore.endpointUrl
	Line int
	Msg  string
}

// Cluster is postgresql.cnpg.io/v1 Cluster (the fields we read).
type Cluster struct {
	Meta   Meta           `yaml:"metadata"`
	Spec   ClusterSpec    `yaml:"spec"`
	Status *ClusterStatus `yaml:"status"`
	Origin Origin         `yaml:"-"`
	Issues []Issue        `yaml:"-"`
}

// ClusterSpec holds the parts of a Cluster spec that involve object stores.
type ClusterSpec struct {
	Backup                 *BackupConfiguration    `yaml:"backup"`
	ExternalClusters       []ExternalCluster       `yaml:"externalClusters"`
	Bootstrap              *Bootstrap              `yaml:"bootstrap"`
	Replica                *ReplicaConfiguration   `yaml:"replica"`
	Plugins                []PluginConfiguration   `yaml:"plugins"`
	ServiceAccountTemplate *ServiceAccountTemplate `yaml:"serviceAccountTemplate"`
	// ServiceAccountName (CNPG ≥ 1.29) names a pre-existing ServiceAccount the instance Pods run
	// as, instead of the one CNPG makes after the Cluster (exclusive with serviceAccountTemplate).
	ServiceAccountName string `yaml:"serviceAccountName"`
	// Env and EnvFrom are given to the instance container, where the in-tree backup client runs.
	Env     []EnvVar        `yaml:"env"`
	EnvFrom []EnvFromSource `yaml:"envFrom"`
	// InheritedMetadata is put on every object CNPG makes for the Cluster, its Pods included.
	InheritedMetadata *EmbeddedMetadata `yaml:"inheritedMetadata"`
}

// EmbeddedMetadata is spec.inheritedMetadata.
type EmbeddedMetadata struct {
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// EnvFromSource is a container envFrom entry.
type EnvFromSource struct {
	Prefix       string          `yaml:"prefix"`
	SecretRef    *LocalObjectRef `yaml:"secretRef"`
	ConfigMapRef *LocalObjectRef `yaml:"configMapRef"`
}

// LocalObjectRef names a Secret or ConfigMap of the object's namespace (envFrom).
type LocalObjectRef struct {
	Name     string `yaml:"name"`
	Optional *bool  `yaml:"optional"`
}

// EnvVarSource is a container env entry's valueFrom.
type EnvVarSource struct {
	SecretKeyRef    *KeyRef `yaml:"secretKeyRef"`
	ConfigMapKeyRef *KeyRef `yaml:"configMapKeyRef"`
	// FieldRef and ResourceFieldRef (the Pod's own fields) are only read for their presence.
	FieldRef         map[string]any `yaml:"fieldRef"`
	ResourceFieldRef map[string]any `yaml:"resourceFieldRef"`
}

// KeyRef is a secretKeyRef or configMapKeyRef.
type KeyRef struct {
	Name     string `yaml:"name"`
	Key      string `yaml:"key"`
	Optional *bool  `yaml:"optional"`
}

// IsOptional reports whether a missing object or key is allowed.
func (r *KeyRef) IsOptional() bool { return r.Optional != nil && *r.Optional }

// IsOptional reports whether a missing object is allowed.
func (r *LocalObjectRef) IsOptional() bool { return r.Optional != nil && *r.Optional }

// ClusterStatus is the part of a live Cluster's status we read.
type ClusterStatus struct {
	CurrentPrimary           string      `yaml:"currentPrimary"`
	TimelineID               int         `yaml:"timelineID"`
	SystemID                 string      `yaml:"systemID"` // PostgreSQL's system identifier, once the Cluster runs
	FirstRecoverabilityPoint string      `yaml:"firstRecoverabilityPoint"`
	LastSuccessfulBackup     string      `yaml:"lastSuccessfulBackup"`
	Conditions               []Condition `yaml:"conditions"`
}

// Condition is a status condition.
type Condition struct {
	Type    string `yaml:"type"`
	Status  string `yaml:"status"`
	Reason  string `yaml:"reason"`
	Message string `yaml:"message"`
}

// ServiceAccountTemplate carries the annotations CNPG puts on the Cluster's ServiceAccount.
type ServiceAccountTemplate struct {
	Metadata Meta `yaml:"metadata"`
}

// BackupConfiguration is spec.backup.
type BackupConfiguration struct {
	BarmanObjectStore *BarmanObjectStore `yaml:"barmanObjectStore"`
	RetentionPolicy   string             `yaml:"retentionPolicy"`
}

// ExternalCluster is one spec.externalClusters[] entry.
type ExternalCluster struct {
	Name string `yaml:"name"`
	// ConnectionParameters (libpq parameters for streaming) are only read for their presence,
	// so any mapping is accepted.
	ConnectionParameters map[string]any       `yaml:"connectionParameters"`
	SSLCert              *SecretKeySelector   `yaml:"sslCert"`
	SSLKey               *SecretKeySelector   `yaml:"sslKey"`
	SSLRootCert          *SecretKeySelector   `yaml:"sslRootCert"`
	BarmanObjectStore    *BarmanObjectStore   `yaml:"barmanObjectStore"`
	Plugin               *PluginConfiguration `yaml:"plugin"`
}

// Bootstrap is spec.bootstrap.
type Bootstrap struct {
	Recovery     *Recovery     `yaml:"recovery"`
	PgBaseBackup *PgBaseBackup `yaml:"pg_basebackup"`
}

// Recovery is spec.bootstrap.recovery.
type Recovery struct {
	Source string        `yaml:"source"`
	Backup *BackupSource `yaml:"backup"`
	// VolumeSnapshots (recovery from snapshots; source then only feeds WAL) is read for its presence.
	VolumeSnapshots map[string]any  `yaml:"volumeSnapshots"`
	RecoveryTarget  *RecoveryTarget `yaml:"recoveryTarget"`
}

// BackupSource is spec.bootstrap.recovery.backup: a Backup object of the Cluster's namespace.
type BackupSource struct {
	Name string `yaml:"name"`
}

// PgBaseBackup is spec.bootstrap.pg_basebackup.
type PgBaseBackup struct {
	Source string `yaml:"source"`
}

// RecoveryTarget is spec.bootstrap.recovery.recoveryTarget.
type RecoveryTarget struct {
	TargetTLI       string `yaml:"targetTLI"`
	TargetTime      string `yaml:"targetTime"`
	TargetLSN       string `yaml:"targetLSN"`
	TargetXID       string `yaml:"targetXID"`
	TargetName      string `yaml:"targetName"`
	TargetImmediate *bool  `yaml:"targetImmediate"`
	Exclusive       *bool  `yaml:"exclusive"`
	BackupID        string `yaml:"backupID"`
}

// ReplicaConfiguration is spec.replica.
type ReplicaConfiguration struct {
	Enabled        *bool  `yaml:"enabled"`
	Source         string `yaml:"source"`
	Primary        string `yaml:"primary"`
	Self           string `yaml:"self"`
	PromotionToken string `yaml:"promotionToken"`
}

// PluginConfiguration is a spec.plugins[] entry or spec.externalClusters[].plugin.
type PluginConfiguration struct {
	Name          string            `yaml:"name"`
	Enabled       *bool             `yaml:"enabled"`
	IsWALArchiver *bool             `yaml:"isWALArchiver"`
	Parameters    map[string]string `yaml:"parameters"`
}

// BarmanObjectStore is CNPG's BarmanObjectStoreConfiguration: spec.backup.barmanObjectStore,
// spec.externalClusters[].barmanObjectStore and the plugin ObjectStore's spec.configuration.
// It is decoded strictly.
type BarmanObjectStore struct {
	DestinationPath   string             `yaml:"destinationPath"`
	ServerName        string             `yaml:"serverName"`
	EndpointURL       string             `yaml:"endpointURL"`
	EndpointCA        *SecretKeySelector `yaml:"endpointCA"`
	S3Credentials     *S3Credentials     `yaml:"s3Credentials"`
	AzureCredentials  *AzureCredentials  `yaml:"azureCredentials"`
	GoogleCredentials *GoogleCredentials `yaml:"googleCredentials"`
	Wal               *WalBackup         `yaml:"wal"`
	Data              *DataBackup        `yaml:"data"`
	Tags              map[string]string  `yaml:"tags"`
	HistoryTags       map[string]string  `yaml:"historyTags"`
}

// SecretKeySelector references one key of a Secret in the object's namespace.
type SecretKeySelector struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

// S3Credentials is barmanObjectStore.s3Credentials.
type S3Credentials struct {
	AccessKeyID        *SecretKeySelector `yaml:"accessKeyId"`
	SecretAccessKey    *SecretKeySelector `yaml:"secretAccessKey"`
	Region             *SecretKeySelector `yaml:"region"`
	SessionToken       *SecretKeySelector `yaml:"sessionToken"`
	InheritFromIAMRole bool               `yaml:"inheritFromIAMRole"`
}

// AzureCredentials is barmanObjectStore.azureCredentials.
type AzureCredentials struct {
	ConnectionString           *SecretKeySelector `yaml:"connectionString"`
	StorageAccount             *SecretKeySelector `yaml:"storageAccount"`
	StorageKey                 *SecretKeySelector `yaml:"storageKey"`
	StorageSasToken            *SecretKeySelector `yaml:"storageSasToken"`
	InheritFromAzureAD         bool               `yaml:"inheritFromAzureAD"`
	UseDefaultAzureCredentials bool               `yaml:"useDefaultAzureCredentials"`
}

// GoogleCredentials is barmanObjectStore.googleCredentials.
type GoogleCredentials struct {
	ApplicationCredentials *SecretKeySelector `yaml:"applicationCredentials"`
	GKEEnvironment         bool               `yaml:"gkeEnvironment"`
}

// WalBackup is barmanObjectStore.wal.
type WalBackup struct {
	Compression                  string   `yaml:"compression"`
	Encryption                   string   `yaml:"encryption"`
	MaxParallel                  *int     `yaml:"maxParallel"` // nil: not set (an explicit 0 is an error)
	ArchiveAdditionalCommandArgs []string `yaml:"archiveAdditionalCommandArgs"`
	RestoreAdditionalCommandArgs []string `yaml:"restoreAdditionalCommandArgs"`
}

// DataBackup is barmanObjectStore.data.
type DataBackup struct {
	Compression                  string   `yaml:"compression"`
	Encryption                   string   `yaml:"encryption"`
	Jobs                         *int     `yaml:"jobs"`
	ImmediateCheckpoint          bool     `yaml:"immediateCheckpoint"`
	AdditionalCommandArgs        []string `yaml:"additionalCommandArgs"`
	RestoreAdditionalCommandArgs []string `yaml:"restoreAdditionalCommandArgs"`
}

// ObjectStore is barmancloud.cnpg.io/v1 ObjectStore (the Barman Cloud plugin).
type ObjectStore struct {
	Meta   Meta               `yaml:"metadata"`
	Spec   ObjectStoreSpec    `yaml:"spec"`
	Status *ObjectStoreStatus `yaml:"status"`
	Origin Origin             `yaml:"-"`
	Issues []Issue            `yaml:"-"`
}

// ObjectStoreSpec is the ObjectStore spec.
type ObjectStoreSpec struct {
	Configuration                BarmanObjectStore     `yaml:"configuration"`
	RetentionPolicy              string                `yaml:"retentionPolicy"`
	InstanceSidecarConfiguration *SidecarConfiguration `yaml:"instanceSidecarConfiguration"`
}

// ObjectStoreStatus is the plugin's status of an ObjectStore.
type ObjectStoreStatus struct {
	// ServerRecoveryWindow is by serverName.
	ServerRecoveryWindow map[string]RecoveryWindow `yaml:"serverRecoveryWindow"`
}

// RecoveryWindow is one server's entry of status.serverRecoveryWindow.
type RecoveryWindow struct {
	FirstRecoverabilityPoint string `yaml:"firstRecoverabilityPoint"`
	LastSuccessfulBackupTime string `yaml:"lastSuccessfulBackupTime"`
	LastFailedBackupTime     string `yaml:"lastFailedBackupTime"`
}

// SidecarConfiguration is spec.instanceSidecarConfiguration (only env is read).
type SidecarConfiguration struct {
	Env []EnvVar `yaml:"env"`
}

// EnvVar is a container environment variable: a literal value or a valueFrom.
type EnvVar struct {
	Name      string        `yaml:"name"`
	Value     string        `yaml:"value"`
	ValueFrom *EnvVarSource `yaml:"valueFrom"`
}

// Backup is postgresql.cnpg.io/v1 Backup (the fields we read).
type Backup struct {
	Meta   Meta          `yaml:"metadata"`
	Spec   BackupSpec    `yaml:"spec"`
	Status *BackupStatus `yaml:"status"`
	Origin Origin        `yaml:"-"`
	Issues []Issue       `yaml:"-"`
}

// ScheduledBackup is postgresql.cnpg.io/v1 ScheduledBackup (the fields we read).
type ScheduledBackup struct {
	Meta   Meta       `yaml:"metadata"`
	Spec   BackupSpec `yaml:"spec"`
	Origin Origin     `yaml:"-"`
	Issues []Issue    `yaml:"-"`
}

// BackupSpec is the spec of a Backup or ScheduledBackup.
type BackupSpec struct {
	Cluster             LocalObjectRef       `yaml:"cluster"`
	Method              string               `yaml:"method"` // "" is barmanObjectStore
	PluginConfiguration *PluginConfiguration `yaml:"pluginConfiguration"`
}

// BackupMethod is the spec's method with CNPG's default.
func (s BackupSpec) BackupMethod() string {
	if s.Method == "" {
		return "barmanObjectStore"
	}
	return s.Method
}

// BackupStatus is what CNPG records of a Backup: for the in-tree method, the object-store
// configuration it was taken with and its barman backup ID.
type BackupStatus struct {
	Phase             string             `yaml:"phase"`
	Method            string             `yaml:"method"`
	BackupID          string             `yaml:"backupId"`
	DestinationPath   string             `yaml:"destinationPath"`
	ServerName        string             `yaml:"serverName"`
	EndpointURL       string             `yaml:"endpointURL"`
	EndpointCA        *SecretKeySelector `yaml:"endpointCA"`
	S3Credentials     *S3Credentials     `yaml:"s3Credentials"`
	AzureCredentials  *AzureCredentials  `yaml:"azureCredentials"`
	GoogleCredentials *GoogleCredentials `yaml:"googleCredentials"`
}

// ConfigMap is a v1 ConfigMap; Data holds data and binaryData (decoded) merged.
type ConfigMap struct {
	Meta   Meta
	Data   map[string][]byte
	Origin Origin
}

// Secret is a v1 Secret; Data holds the decoded values (data and stringData merged).
type Secret struct {
	Meta   Meta
	Data   map[string][]byte
	Origin Origin
}

// PluginName is the Barman Cloud plugin's name in spec.plugins and spec.externalClusters[].plugin.
const PluginName = "barman-cloud.cloudnative-pg.io"

// IsEnabled reports whether a plugin entry is enabled (the default).
func (p *PluginConfiguration) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// ObjectStoreNames lists, once each and in order, the ObjectStores a Cluster uses through the
// Barman Cloud plugin: its enabled spec.plugins entries and its externalClusters' plugin entries.
func (c *Cluster) ObjectStoreNames() []string {
	var out []string
	seen := map[string]bool{}
	add := func(p *PluginConfiguration) {
		if n := p.Parameters["barmanObjectName"]; p.Name == PluginName && n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for i := range c.Spec.Plugins {
		if p := &c.Spec.Plugins[i]; p.IsEnabled() {
			add(p)
		}
	}
	for _, ec := range c.Spec.ExternalClusters {
		if ec.Plugin != nil {
			add(ec.Plugin)
		}
	}
	return out
}

// IsReplica mirrors CNPG's Cluster.IsReplica: without spec.replica the Cluster is a primary;
// spec.replica.enabled, when set, decides alone; otherwise the Cluster is a replica unless
// spec.replica.primary names it (spec.replica.self, or the Cluster's own name).
func (c *Cluster) IsReplica() bool {
	r := c.Spec.Replica
	switch {
	case r == nil:
		return false
	case r.Enabled != nil:
		return *r.Enabled
	case r.Self != "":
		return r.Self != r.Primary
	}
	return c.Meta.Name != r.Primary
}

// SelfName is the spec.externalClusters entry that describes the Cluster itself in a distributed
// topology: spec.replica.self, or the Cluster's name when spec.replica.primary is set (CNPG's
// IsReplica compares primary with that name). "" when spec.replica sets neither.
func (c *Cluster) SelfName() string {
	r := c.Spec.Replica
	switch {
	case r == nil:
		return ""
	case r.Self != "":
		return r.Self
	case r.Primary != "":
		return c.Meta.Name
	}
	return ""
}

// ExternalCluster returns the first spec.externalClusters entry named name, as CNPG looks it up.
func (c *Cluster) ExternalCluster(name string) (*ExternalCluster, int) {
	for i := range c.Spec.ExternalClusters {
		if c.Spec.ExternalClusters[i].Name == name {
			return &c.Spec.ExternalClusters[i], i
		}
	}
	return nil, -1
}
